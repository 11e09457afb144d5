//! The admin token that guards the API.

use std::fs;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Environment variable that sets the admin token; it wins over the configuration.
pub const ADMIN_TOKEN_ENV: &str = "HUBKITD_ADMIN_TOKEN";

/// Name of the generated token file inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Source of the admin token, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The `HUBKITD_ADMIN_TOKEN` environment variable.
    Environment,
    /// `server.admin_token` in the configuration file.
    Config,
    /// A token file in the data directory, generated now or on an earlier start.
    File(PathBuf),
}

/// The admin token, kept as a digest so comparisons take constant time.
#[derive(Clone)]
pub struct AdminToken {
    token: String,
    digest: [u8; 32],
    source: TokenSource,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Error returned when the token file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file exists but cannot be read.
    #[error("failed to read admin token file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file cannot be written.
    #[error("failed to write admin token file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty or too short.
    #[error("admin token file {path} holds a token of {length} characters; it must be at least 32")]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Characters found.
        length: usize,
    },
    /// The environment variable is set but too short.
    #[error("{ADMIN_TOKEN_ENV} is {length} characters; it must be at least 32")]
    EnvTooShort {
        /// Characters found.
        length: usize,
    },
    /// The environment variable contains a character that cannot travel in an HTTP header.
    #[error(
        "{ADMIN_TOKEN_ENV} contains a space, a control or a non-ASCII character; use only \
         visible ASCII characters, because clients send the token in an HTTP header"
    )]
    EnvInvalidCharacter,
    /// The operating system's random source failed.
    #[error("failed to generate a random admin token: {0}")]
    Random(String),
}

impl AdminToken {
    /// Chooses the admin token: the environment variable's value, else the configured
    /// token, else the token file in `data_dir`, generated (mode 0600) when missing.
    ///
    /// # Errors
    ///
    /// Fails when the environment variable is too short, or the token file cannot be read,
    /// created, or contains a token that is too short.
    pub fn resolve(
        env_value: Option<String>,
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<AdminToken, TokenError> {
        if let Some(token) = env_value.filter(|t| !t.is_empty()) {
            let length = token.chars().count();
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokenError::EnvInvalidCharacter);
            }
            if length < 32 {
                return Err(TokenError::EnvTooShort { length });
            }
            return Ok(AdminToken::new(token, TokenSource::Environment));
        }
        if let Some(token) = configured {
            return Ok(AdminToken::new(token.to_owned(), TokenSource::Config));
        }
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        let token = read_or_create(&path)?;
        Ok(AdminToken::new(token, TokenSource::File(path)))
    }

    fn new(token: String, source: TokenSource) -> AdminToken {
        let digest = Sha256::digest(token.as_bytes()).into();
        AdminToken {
            token,
            digest,
            source,
        }
    }

    /// Returns where the token came from.
    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// Returns the token itself, for tests and for printing to the operator.
    pub fn expose(&self) -> &str {
        &self.token
    }

    /// Checks a presented token in constant time (both sides are hashed first, so the
    /// comparison does not depend on the lengths).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

fn read_or_create(path: &Path) -> Result<String, TokenError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            warn_if_shared(path);
            let token = text.trim().to_owned();
            let length = token.chars().count();
            if length < 32 {
                return Err(TokenError::TooShort {
                    path: path.to_owned(),
                    length,
                });
            }
            Ok(token)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(source) => Err(TokenError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Warns when other users may read the token file.
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{mode:o}"),
            "admin token file is readable by other users; run chmod 600 on it"
        );
    }
}

fn create(path: &Path) -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| TokenError::Random(err.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let write_err = |source| TokenError::Write {
        path: path.to_owned(),
        source,
    };
    crate::fsutil::write_private_file(path, format!("{token}\n").as_bytes()).map_err(write_err)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn env_wins_over_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = AdminToken::resolve(Some(format!("{LONG}env")), Some("config"), dir.path())
            .expect("token");
        assert_eq!(token.source(), &TokenSource::Environment);
        assert!(token.matches(format!("{LONG}env").as_bytes()));
    }

    #[test]
    fn non_ascii_env_token_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        for token in [format!("ü{LONG}"), "ü-short".to_owned()] {
            let err = AdminToken::resolve(Some(token), None, dir.path()).expect_err("non-ascii");
            assert!(matches!(err, TokenError::EnvInvalidCharacter), "{err}");
        }
    }

    #[test]
    fn short_env_token_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = AdminToken::resolve(Some("short".into()), None, dir.path()).expect_err("short");
        assert!(matches!(err, TokenError::EnvTooShort { length: 5 }));
    }

    #[test]
    fn generated_token_is_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = AdminToken::resolve(None, None, dir.path()).expect("token");
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(first.source(), &TokenSource::File(path.clone()));
        assert_eq!(first.expose().len(), 64);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(&path).expect("metadata").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let second = AdminToken::resolve(None, None, dir.path()).expect("token");
        assert_eq!(second.expose(), first.expose());
    }

    #[test]
    fn wrong_token_does_not_match() {
        let token = AdminToken::new(LONG.into(), TokenSource::Config);
        assert!(token.matches(LONG.as_bytes()));
        assert!(!token.matches(b"0123456789abcdef0123456789abcdeX"));
        assert!(!token.matches(b""));
    }
}
