use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{EndpointError, excerpt};

/// Minimum length of a custom path in characters.
const MIN_PATH_CHARS: usize = 8;
/// Maximum length of a custom path in characters.
const MAX_PATH_CHARS: usize = 1000;

/// Path of a webhook after `/webhook/urls/`: 8 to 1000 characters of `A-Z a-z 0-9 - _ /`,
/// with no leading or trailing `/` and no `//`.
///
/// The slash rules exist because clients and proxies normalise slashes, so a path that
/// relies on them would not reach the webhook reliably.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomPath(String);

impl CustomPath {
    /// Parses and validates a custom path.
    ///
    /// # Errors
    ///
    /// Returns [`EndpointError::PathCharacter`] for the first character that is not
    /// allowed, [`EndpointError::PathLength`] for a path outside 8 to 1000 characters,
    /// and [`EndpointError::PathLeadingSlash`], [`EndpointError::PathTrailingSlash`] or
    /// [`EndpointError::PathEmptySegment`] for a misplaced `/`.
    pub fn parse(path: &str) -> Result<CustomPath, EndpointError> {
        let invalid = path
            .chars()
            .enumerate()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')));
        if let Some((index, character)) = invalid {
            return Err(EndpointError::PathCharacter {
                path: excerpt(path),
                character,
                position: index + 1,
            });
        }

        // Only ASCII is left, so the byte length is the character length.
        let length = path.len();
        if !(MIN_PATH_CHARS..=MAX_PATH_CHARS).contains(&length) {
            return Err(EndpointError::PathLength {
                path: excerpt(path),
                length,
            });
        }

        if path.starts_with('/') {
            return Err(EndpointError::PathLeadingSlash {
                path: excerpt(path),
            });
        }
        if path.ends_with('/') {
            return Err(EndpointError::PathTrailingSlash {
                path: excerpt(path),
            });
        }
        if let Some(index) = path.find("//") {
            return Err(EndpointError::PathEmptySegment {
                path: excerpt(path),
                position: index + 1,
            });
        }
        Ok(CustomPath(path.to_owned()))
    }

    /// Returns the path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CustomPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomPath({:?})", self.0)
    }
}

impl TryFrom<String> for CustomPath {
    type Error = EndpointError;

    fn try_from(path: String) -> Result<Self, Self::Error> {
        CustomPath::parse(&path)
    }
}

impl From<CustomPath> for String {
    fn from(path: CustomPath) -> Self {
        path.0
    }
}

#[cfg(test)]
mod tests;
