//! The webhook endpoint registry: which webhooks exist, the custom path that reaches
//! each, the payload format it takes, and the HTTP Basic authentication it requires.
//!
//! [`Registry`] validates a list of [`Webhook`]s and looks up the [`Endpoint`] for a
//! request path. [`Endpoint::authorize`] checks an `Authorization` header. Clear-text
//! passwords are compared at once. Argon2 password hashes are verified through a
//! [`PendingVerification`] that the caller runs on a blocking thread, unless the
//! endpoint's caches already know the credentials. [`CustomPath`], [`PayloadFormat`],
//! [`Auth`] and the `validate_*` functions check configuration values, and
//! [`EndpointError`] explains what is wrong without repeating secrets.
//!
//! This crate does no I/O apart from reading random bytes from the operating system
//! for salts and cache keys. Reading the configuration, attaching file and line to
//! errors, decoding payloads and limiting concurrent verifications are left to the
//! config and server crates.

#![deny(missing_docs)]

mod auth;
mod credentials;
mod error;
mod format;
mod path;
mod registry;
#[cfg(test)]
mod test_support;

pub use auth::{
    Auth, PasswordSpec, hash_password, validate_clear_password, validate_password_hash,
    validate_username,
};
pub use credentials::{AuthCheck, AuthError, Credentials, PendingVerification};
pub use error::EndpointError;
pub use format::PayloadFormat;
pub use path::CustomPath;
pub use registry::{Endpoint, FileReception, Registry, Webhook};
