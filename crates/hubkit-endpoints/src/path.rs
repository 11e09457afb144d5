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
mod tests {
    use super::CustomPath;
    use crate::EndpointError;

    #[test]
    fn path_accepts_allowed_forms() {
        let long = "a".repeat(1000);
        let accepted = ["sensor-data", "Sensor_Data/room-1", "12345678", &long];
        for path in accepted {
            let parsed = CustomPath::parse(path).expect("path is valid");
            assert_eq!(parsed.as_str(), path);
        }
    }

    #[test]
    fn path_length_limits() {
        let cases = [
            ("", 0),
            ("abc", 3),
            ("abcdefg", 7),
            (&"a".repeat(1001), 1001),
        ];
        for (path, length) in cases {
            let err = CustomPath::parse(path).expect_err("length is out of range");
            assert!(
                matches!(err, EndpointError::PathLength { length: found, .. } if found == length),
                "{path:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn path_length_message() {
        let err = CustomPath::parse("abc").expect_err("too short");
        assert_eq!(
            err.to_string(),
            "custom path \"abc\" is 3 characters; it must be 8 to 1000"
        );
    }

    #[test]
    fn path_space_is_named() {
        let err = CustomPath::parse("abcd efgh").expect_err("space is not allowed");
        assert_eq!(
            err.to_string(),
            "custom path \"abcd efgh\" contains a space at position 5; \
             use only A-Z, a-z, 0-9, '-', '_' and '/'"
        );
    }

    #[test]
    fn path_rejected_characters() {
        let cases = [
            ("sensor\tdata", '\t', 7),
            ("sensor.data", '.', 7),
            ("sensor%20data", '%', 7),
            ("sensor?data=1", '?', 7),
            ("café-data", 'é', 4),
            ("sensor\ndata", '\n', 7),
            ("sensor\\data", '\\', 7),
        ];
        for (path, character, position) in cases {
            assert_eq!(
                CustomPath::parse(path),
                Err(EndpointError::PathCharacter {
                    path: path.to_owned(),
                    character,
                    position
                }),
                "{path:?}"
            );
        }
    }

    #[test]
    fn path_tab_is_named() {
        let err = CustomPath::parse("abc\tdefgh").expect_err("tab is not allowed");
        assert!(
            err.to_string().contains("contains a tab at position 4"),
            "{err}"
        );
    }

    #[test]
    fn path_slash_rules() {
        let leading = CustomPath::parse("/sensor-data");
        assert!(
            matches!(leading, Err(EndpointError::PathLeadingSlash { .. })),
            "{leading:?}"
        );
        let trailing = CustomPath::parse("sensor-data/");
        assert!(
            matches!(trailing, Err(EndpointError::PathTrailingSlash { .. })),
            "{trailing:?}"
        );
        let empty = CustomPath::parse("sensor//data");
        assert!(
            matches!(
                empty,
                Err(EndpointError::PathEmptySegment { position: 7, .. })
            ),
            "{empty:?}"
        );
    }

    #[test]
    fn path_error_shortens_long_value() {
        let path = format!("{}.", "a".repeat(2000));
        let err = CustomPath::parse(&path).expect_err("dot is not allowed");
        let expected = format!("custom path \"{}...\" contains '.'", "a".repeat(60));
        assert!(err.to_string().starts_with(&expected), "{err}");
    }

    #[test]
    fn path_deserializes_with_validation() {
        let parsed: CustomPath = serde_json::from_str("\"sensor-data\"").expect("path is valid");
        assert_eq!(parsed.as_str(), "sensor-data");
        let invalid = serde_json::from_str::<CustomPath>("\"abc\"");
        assert!(invalid.is_err());
    }
}
