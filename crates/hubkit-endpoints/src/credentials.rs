use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{Auth, PasswordSpec};
use crate::error::EndpointError;

/// Number of rejected credential digests that each endpoint with a password hash keeps.
const MAX_REJECTED_DIGESTS: usize = 64;

/// SHA-256 output.
type Digest = [u8; 32];

/// Result of checking a request's `Authorization` header against a webhook.
#[derive(Debug)]
pub enum AuthCheck {
    /// The request may proceed.
    Allowed,
    /// The request must be rejected with 401.
    Denied(AuthError),
    /// The credentials need an argon2 verification, which takes tens of milliseconds,
    /// so the caller should run [`PendingVerification::verify`] on a blocking thread.
    Verify(PendingVerification),
}

/// Reason a request's credentials were rejected. Neither the message nor `Debug`
/// contains the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request has no `Authorization` header.
    #[error("Authorization header is missing; send HTTP Basic credentials")]
    MissingHeader,
    /// The `Authorization` header uses a scheme other than Basic.
    #[error(
        "Authorization header does not use the Basic scheme; \
         send \"Authorization: Basic <base64 of username:password>\""
    )]
    NotBasic,
    /// The Basic credentials are missing or not valid base64.
    #[error(
        "Basic credentials are missing or not valid base64; \
         encode username:password with the standard base64 alphabet"
    )]
    InvalidBase64,
    /// The decoded credentials are not valid UTF-8.
    #[error("Basic credentials are not valid UTF-8; encode username:password as UTF-8")]
    NotUtf8,
    /// The decoded credentials contain no `:` between username and password.
    #[error("Basic credentials contain no ':'; send username:password")]
    MissingColon,
    /// The username or the password does not match.
    #[error("username or password is wrong")]
    WrongCredentials,
}

impl AuthError {
    /// Returns a stable kebab-case id of the error kind, for the `type` of an RFC 9457
    /// problem.
    pub fn problem_slug(self) -> &'static str {
        match self {
            AuthError::MissingHeader => "missing-credentials",
            AuthError::NotBasic => "unsupported-auth-scheme",
            AuthError::InvalidBase64 => "invalid-base64-credentials",
            AuthError::NotUtf8 => "invalid-utf8-credentials",
            AuthError::MissingColon => "missing-colon-in-credentials",
            AuthError::WrongCredentials => "wrong-credentials",
        }
    }
}

/// The credential check of one device that takes HTTP Basic authentication, such as a
/// webhook or a camera, built from its [`Auth`].
pub struct Credentials(Verifier);

impl Credentials {
    /// Builds the check for `auth`. `owner` names the device in log lines about
    /// verifications.
    ///
    /// # Errors
    ///
    /// Returns [`EndpointError::RandomUnavailable`] when the cache key of a password
    /// hash cannot be drawn.
    pub fn new(owner: &str, auth: &Auth) -> Result<Credentials, EndpointError> {
        Verifier::new(owner, auth).map(Credentials)
    }

    /// Checks a request's raw `Authorization` header value, as
    /// [`Endpoint::authorize`](crate::Endpoint::authorize) describes.
    pub fn authorize(&self, authorization: Option<&[u8]>) -> AuthCheck {
        self.0.authorize(authorization)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0 {
            Verifier::Open => "none",
            Verifier::Clear(_) => "basic (clear password)",
            Verifier::Hashed(_) => "basic (password hash)",
        };
        f.debug_tuple("Credentials").field(&kind).finish()
    }
}

/// Credential check of one endpoint, built from its [`Auth`].
pub(crate) enum Verifier {
    Open,
    /// SHA-256 of the configured `username:password`.
    Clear(Digest),
    Hashed(Arc<HashedVerifier>),
}

/// State of an endpoint whose password is an argon2 hash.
pub(crate) struct HashedVerifier {
    webhook_name: String,
    username: String,
    phc: String,
    /// Random key mixed into every cached digest, so that the caches never contain an
    /// unsalted hash of a password.
    key: [u8; 32],
    cache: Mutex<VerificationCache>,
}

/// Keyed digests of `username:password` from earlier argon2 verifications.
#[derive(Default)]
struct VerificationCache {
    /// Digest of the last credentials that verified.
    verified: Option<Digest>,
    /// Digests of rejected credentials, oldest first, at most [`MAX_REJECTED_DIGESTS`].
    rejected: VecDeque<Digest>,
}

impl Verifier {
    /// Builds the check for `auth`, drawing a random cache key for a password hash.
    ///
    /// # Errors
    ///
    /// Returns [`EndpointError::RandomUnavailable`] when the key cannot be drawn.
    pub(crate) fn new(webhook_name: &str, auth: &Auth) -> Result<Verifier, EndpointError> {
        let Auth::Basic { username, password } = auth else {
            return Ok(Verifier::Open);
        };
        match password {
            PasswordSpec::Clear(password) => {
                let credentials = format!("{username}:{password}");
                Ok(Verifier::Clear(Sha256::digest(credentials).into()))
            }
            PasswordSpec::Phc(phc) => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|err| EndpointError::RandomUnavailable {
                    reason: err.to_string(),
                })?;
                Ok(Verifier::Hashed(Arc::new(HashedVerifier {
                    webhook_name: webhook_name.to_owned(),
                    username: username.clone(),
                    phc: phc.clone(),
                    key,
                    cache: Mutex::default(),
                })))
            }
        }
    }

    /// Checks the raw `Authorization` header value.
    pub(crate) fn authorize(&self, authorization: Option<&[u8]>) -> AuthCheck {
        if let Verifier::Open = self {
            return AuthCheck::Allowed;
        }
        let credentials = match authorization.map(parse_basic) {
            None => return AuthCheck::Denied(AuthError::MissingHeader),
            Some(Err(err)) => return AuthCheck::Denied(err),
            Some(Ok(credentials)) => credentials,
        };
        match self {
            Verifier::Open => AuthCheck::Allowed,
            Verifier::Clear(expected) => {
                let presented: Digest = Sha256::digest(&credentials).into();
                if bool::from(presented.ct_eq(expected)) {
                    AuthCheck::Allowed
                } else {
                    AuthCheck::Denied(AuthError::WrongCredentials)
                }
            }
            Verifier::Hashed(verifier) => verifier.check_cache(credentials),
        }
    }
}

impl HashedVerifier {
    /// Returns the cached result for `credentials`, or the verification still to run.
    fn check_cache(self: &Arc<Self>, credentials: String) -> AuthCheck {
        let digest = self.keyed_digest(&credentials);
        let cache = self.lock_cache();
        if let Some(verified) = &cache.verified
            && bool::from(verified.ct_eq(&digest))
        {
            return AuthCheck::Allowed;
        }
        if cache.rejected.contains(&digest) {
            return AuthCheck::Denied(AuthError::WrongCredentials);
        }
        drop(cache);
        AuthCheck::Verify(PendingVerification {
            verifier: Arc::clone(self),
            credentials,
            digest,
        })
    }

    fn keyed_digest(&self, credentials: &str) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(credentials.as_bytes());
        hasher.finalize().into()
    }

    /// Locks the cache. A panic elsewhere cannot leave the cache inconsistent, because
    /// each update is a single assignment or push, so a poisoned lock is used as is.
    fn lock_cache(&self) -> MutexGuard<'_, VerificationCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs argon2 on `password`. Returns `Ok(false)` for a wrong password and `Err`
    /// when the hash cannot be used at all.
    fn verify_password(&self, password: &str) -> Result<bool, argon2::password_hash::Error> {
        let hash = PasswordHash::new(&self.phc)?;
        match Argon2::default().verify_password(password.as_bytes(), &hash) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

/// Argon2 verification of presented credentials that are not in the caches.
/// Its `Debug` output hides the credentials.
pub struct PendingVerification {
    verifier: Arc<HashedVerifier>,
    /// Decoded `username:password`, known to contain a `:`.
    credentials: String,
    digest: Digest,
}

impl PendingVerification {
    /// Verifies the credentials with argon2, which takes tens of milliseconds of CPU,
    /// and records the result in the endpoint's caches.
    ///
    /// The username comparison and the argon2 run both happen whatever the username,
    /// so a wrong username takes as long as a wrong password.
    ///
    /// # Errors
    ///
    /// Returns [`AuthError::WrongCredentials`] when the username or the password does
    /// not match. It returns the same error, without caching it, when argon2 fails for
    /// another reason, and logs that reason at warn level.
    pub fn verify(self) -> Result<(), AuthError> {
        let verifier = &self.verifier;
        let (username, password) = self
            .credentials
            .split_once(':')
            .unwrap_or((self.credentials.as_str(), ""));
        let username_matches = username.as_bytes().ct_eq(verifier.username.as_bytes());

        let password_matches = match verifier.verify_password(password) {
            Ok(matches) => matches,
            Err(err) => {
                tracing::warn!(
                    webhook.name = %verifier.webhook_name,
                    error = %err,
                    "argon2 could not verify the password hash"
                );
                return Err(AuthError::WrongCredentials);
            }
        };

        let mut cache = verifier.lock_cache();
        if bool::from(username_matches) && password_matches {
            cache.verified = Some(self.digest);
            return Ok(());
        }
        if !cache.rejected.contains(&self.digest) {
            if cache.rejected.len() == MAX_REJECTED_DIGESTS {
                cache.rejected.pop_front();
            }
            cache.rejected.push_back(self.digest);
        }
        Err(AuthError::WrongCredentials)
    }
}

impl fmt::Debug for PendingVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingVerification")
            .field("webhook", &self.verifier.webhook_name)
            .finish_non_exhaustive()
    }
}

/// Parses an `Authorization: Basic` header value into the decoded `username:password`.
///
/// The scheme is case-insensitive, base64 padding may be left out, and the text must
/// be UTF-8 with at least one `:`.
fn parse_basic(header: &[u8]) -> Result<String, AuthError> {
    let header = header.trim_ascii();
    let (scheme, token) = match header.iter().position(|&b| b == b' ') {
        Some(space) => (&header[..space], header[space + 1..].trim_ascii_start()),
        None => (header, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"Basic") {
        return Err(AuthError::NotBasic);
    }
    if token.is_empty() {
        return Err(AuthError::InvalidBase64);
    }

    let decoded = STANDARD_PAD_INDIFFERENT
        .decode(token)
        .map_err(|_| AuthError::InvalidBase64)?;
    let credentials = String::from_utf8(decoded).map_err(|_| AuthError::NotUtf8)?;
    if !credentials.contains(':') {
        return Err(AuthError::MissingColon);
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests;
