use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use hubkit_model::ShortId;

use crate::auth::Auth;
use crate::credentials::{AuthCheck, Verifier};
use crate::error::{EndpointError, excerpt};
use crate::format::PayloadFormat;
use crate::path::CustomPath;

/// Configuration of one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Unique name, from which the short id is derived.
    pub name: String,
    /// Stable id derived from the name with `ShortId::derive("webhook", name)`.
    pub short_id: ShortId,
    /// Path after `/webhook/urls/` that reaches this webhook.
    pub custom_path: CustomPath,
    /// Way the webhook receives its payload.
    pub format: PayloadFormat,
    /// Authentication that requests must pass.
    pub auth: Auth,
    /// Whether the webhook accepts requests. The registry keeps disabled webhooks, and
    /// the server decides how to reject their requests.
    pub enabled: bool,
    /// Maximum body size in bytes for this webhook, or `None` for the server's default.
    pub max_body_bytes: Option<u64>,
    /// File reception settings, for bodies that are not JSON.
    pub files: FileReception,
}

/// File reception settings of a webhook whose payload format is `json`: a body whose media
/// type is not JSON is stored as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileReception {
    /// Whether non-JSON bodies are stored as files. When off they are rejected with 415.
    pub enabled: bool,
    /// Maximum file size in bytes, or `None` for the server's default.
    pub max_bytes: Option<u64>,
    /// Stored files older than this are removed, or `None` to keep them regardless of age.
    pub max_age: Option<std::time::Duration>,
    /// While the webhook's stored files take more bytes than this, the oldest are
    /// removed. `None` sets no limit.
    pub max_total_bytes: Option<u64>,
}

impl Default for FileReception {
    fn default() -> FileReception {
        FileReception {
            enabled: true,
            max_bytes: None,
            max_age: None,
            max_total_bytes: None,
        }
    }
}

impl Webhook {
    /// Creates an enabled webhook with the server's default body size limit and the
    /// short id derived from `name`.
    pub fn new(
        name: impl Into<String>,
        custom_path: CustomPath,
        format: PayloadFormat,
        auth: Auth,
    ) -> Webhook {
        let name = name.into();
        Webhook {
            short_id: ShortId::derive("webhook", &name),
            name,
            custom_path,
            format,
            auth,
            enabled: true,
            max_body_bytes: None,
            files: FileReception::default(),
        }
    }
}

/// Webhook ready to serve: its configuration and its credential check.
pub struct Endpoint {
    webhook: Webhook,
    verifier: Verifier,
}

impl Endpoint {
    fn new(webhook: Webhook) -> Result<Endpoint, EndpointError> {
        let verifier = Verifier::new(&webhook.name, &webhook.auth)?;
        Ok(Endpoint { webhook, verifier })
    }

    /// Returns the webhook's configuration.
    pub fn webhook(&self) -> &Webhook {
        &self.webhook
    }

    /// Checks a request's raw `Authorization` header value against the webhook's
    /// authentication.
    ///
    /// A webhook without authentication allows every request. A clear-text password
    /// is compared at once, in constant time. With a password hash, credentials that
    /// were verified or rejected before get the cached result at once. Otherwise the result is [`AuthCheck::Verify`], and the caller runs the argon2
    /// verification. Each distinct wrong credential costs one argon2 run, so the caller
    /// should limit how many run at once.
    pub fn authorize(&self, authorization: Option<&[u8]>) -> AuthCheck {
        self.verifier.authorize(authorization)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

/// Set of webhooks, looked up by custom path.
#[derive(Debug)]
pub struct Registry {
    /// Endpoints in configuration order.
    endpoints: Vec<Arc<Endpoint>>,
    /// Index into `endpoints` by custom path.
    by_path: HashMap<String, usize>,
}

impl Registry {
    /// Validates the webhooks and builds their endpoints.
    ///
    /// # Errors
    ///
    /// Returns [`EndpointError::EmptyName`], [`EndpointError::DuplicateName`],
    /// [`EndpointError::DuplicatePath`] or [`EndpointError::DuplicateShortId`] for
    /// conflicting webhooks, [`EndpointError::InvalidWebhook`] for invalid
    /// authentication settings, and [`EndpointError::RandomUnavailable`] when a cache
    /// key cannot be drawn.
    pub fn new(webhooks: Vec<Webhook>) -> Result<Registry, EndpointError> {
        check_unique(&webhooks)?;

        let mut endpoints = Vec::with_capacity(webhooks.len());
        let mut by_path = HashMap::with_capacity(webhooks.len());
        for webhook in webhooks {
            webhook
                .auth
                .validate()
                .map_err(|err| EndpointError::InvalidWebhook {
                    name: excerpt(&webhook.name),
                    source: Box::new(err),
                })?;
            by_path.insert(webhook.custom_path.as_str().to_owned(), endpoints.len());
            endpoints.push(Arc::new(Endpoint::new(webhook)?));
        }
        Ok(Registry { endpoints, by_path })
    }

    /// Returns the endpoint whose custom path is exactly `path`, the text after
    /// `/webhook/urls/`. The path is not normalised.
    pub fn lookup(&self, path: &str) -> Option<&Arc<Endpoint>> {
        let index = *self.by_path.get(path)?;
        self.endpoints.get(index)
    }

    /// Returns the endpoints in configuration order.
    pub fn iter(&self) -> std::slice::Iter<'_, Arc<Endpoint>> {
        self.endpoints.iter()
    }

    /// Returns the number of webhooks.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Returns whether the registry has no webhooks.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'a Arc<Endpoint>;
    type IntoIter = std::slice::Iter<'a, Arc<Endpoint>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Checks that names are not empty or only whitespace, and that names, custom paths and short ids are
/// unique.
fn check_unique(webhooks: &[Webhook]) -> Result<(), EndpointError> {
    let mut names = HashSet::new();
    let mut paths: HashMap<&str, &str> = HashMap::new();
    let mut short_ids: HashMap<&ShortId, &str> = HashMap::new();
    for webhook in webhooks {
        let name = webhook.name.as_str();
        if name.trim().is_empty() {
            return Err(EndpointError::EmptyName);
        }
        if !names.insert(name) {
            return Err(EndpointError::DuplicateName {
                name: excerpt(name),
            });
        }
        if let Some(first) = paths.insert(webhook.custom_path.as_str(), name) {
            return Err(EndpointError::DuplicatePath {
                path: excerpt(webhook.custom_path.as_str()),
                first: excerpt(first),
                second: excerpt(name),
            });
        }
        if let Some(first) = short_ids.insert(&webhook.short_id, name) {
            return Err(EndpointError::DuplicateShortId {
                short_id: webhook.short_id.to_string(),
                first: excerpt(first),
                second: excerpt(name),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
