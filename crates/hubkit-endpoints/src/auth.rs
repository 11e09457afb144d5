use std::fmt;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher};

use crate::error::{EndpointError, excerpt};

/// Minimum length of a Basic authentication username in characters.
const MIN_USERNAME_CHARS: usize = 4;
/// Minimum length of a clear-text password in characters.
const MIN_PASSWORD_CHARS: usize = 8;
/// Length of the random salt that [`hash_password`] uses, the length that the
/// `password-hash` crate recommends.
const SALT_BYTES: usize = 16;

/// Authentication that a webhook requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No authentication: every request is accepted.
    None,
    /// HTTP Basic authentication (RFC 7617) with one username and password.
    Basic {
        /// Expected username.
        username: String,
        /// Expected password, as clear text or as an argon2 hash.
        password: PasswordSpec,
    },
}

impl Auth {
    /// Validates the username and the password of Basic authentication.
    ///
    /// # Errors
    ///
    /// Returns the error of [`validate_username`], [`validate_clear_password`] or
    /// [`validate_password_hash`].
    pub fn validate(&self) -> Result<(), EndpointError> {
        match self {
            Auth::None => Ok(()),
            Auth::Basic { username, password } => {
                validate_username(username)?;
                password.validate()
            }
        }
    }
}

/// Configured password of Basic authentication. Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordSpec {
    /// Argon2 hash in PHC string format, such as `$argon2id$v=19$m=19456,t=2,p=1$...`.
    Phc(String),
    /// Password in clear text.
    Clear(String),
}

impl PasswordSpec {
    /// Validates the hash or the clear-text password.
    ///
    /// # Errors
    ///
    /// Returns the error of [`validate_password_hash`] or [`validate_clear_password`].
    pub fn validate(&self) -> Result<(), EndpointError> {
        match self {
            PasswordSpec::Phc(phc) => validate_password_hash(phc),
            PasswordSpec::Clear(password) => validate_clear_password(password),
        }
    }
}

impl fmt::Debug for PasswordSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSpec::Phc(_) => f.write_str("Phc(<redacted>)"),
            PasswordSpec::Clear(_) => f.write_str("Clear(<redacted>)"),
        }
    }
}

/// Validates a Basic authentication username: at least 4 characters, no `:` and no
/// control characters.
///
/// # Errors
///
/// Returns [`EndpointError::UsernameControl`], [`EndpointError::UsernameColon`] or
/// [`EndpointError::UsernameLength`], checked in that order.
pub fn validate_username(username: &str) -> Result<(), EndpointError> {
    let control = username.chars().enumerate().find(|(_, c)| c.is_control());
    if let Some((index, character)) = control {
        return Err(EndpointError::UsernameControl {
            character,
            position: index + 1,
        });
    }
    if username.contains(':') {
        return Err(EndpointError::UsernameColon {
            username: excerpt(username),
        });
    }
    let length = username.chars().count();
    if length < MIN_USERNAME_CHARS {
        return Err(EndpointError::UsernameLength {
            username: excerpt(username),
            length,
        });
    }
    Ok(())
}

/// Validates a clear-text password: at least 8 characters.
///
/// # Errors
///
/// Returns [`EndpointError::PasswordLength`] for a shorter password.
pub fn validate_clear_password(password: &str) -> Result<(), EndpointError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(EndpointError::PasswordLength);
    }
    Ok(())
}

/// Validates an argon2 PHC string: it must parse, name argon2id, argon2i or argon2d,
/// contain a salt and a hash output, and carry parameters that argon2 accepts.
///
/// NOTE: costs are not capped. A hash with a large `m` makes every verification
/// allocate `m` KiB.
///
/// # Errors
///
/// Returns [`EndpointError::UnsupportedPasswordHash`] for another algorithm and
/// [`EndpointError::InvalidPasswordHash`] for any other problem.
pub fn validate_password_hash(phc: &str) -> Result<(), EndpointError> {
    let invalid = |reason: String| EndpointError::InvalidPasswordHash { reason };
    let hash = PasswordHash::new(phc).map_err(|err| invalid(err.to_string()))?;

    if argon2::Algorithm::try_from(hash.algorithm).is_err() {
        return Err(EndpointError::UnsupportedPasswordHash {
            algorithm: excerpt(hash.algorithm.as_str()),
        });
    }
    if hash.salt.is_none() {
        return Err(invalid("the salt is missing".to_owned()));
    }
    if hash.hash.is_none() {
        return Err(invalid("the hash output is missing".to_owned()));
    }
    if let Some(version) = hash.version {
        argon2::Version::try_from(version)
            .map_err(|_| invalid(format!("version {version} is not 16 or 19")))?;
    }
    argon2::Params::try_from(&hash).map_err(|err| invalid(format!("parameters: {err}")))?;
    Ok(())
}

/// Hashes a password with argon2id, the `argon2` crate's default parameters and a
/// random 16-byte salt from the operating system, and returns the PHC string.
///
/// # Errors
///
/// Returns [`EndpointError::PasswordLength`] for a password shorter than 8
/// characters, [`EndpointError::RandomUnavailable`] when no salt can be drawn, and
/// [`EndpointError::Hashing`] when argon2 fails.
pub fn hash_password(password: &str) -> Result<String, EndpointError> {
    validate_clear_password(password)?;

    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|err| EndpointError::RandomUnavailable {
        reason: err.to_string(),
    })?;
    let hashing_failed = |err: argon2::password_hash::Error| EndpointError::Hashing {
        reason: err.to_string(),
    };
    let salt = SaltString::encode_b64(&salt).map_err(hashing_failed)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(hashing_failed)?;
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests;
