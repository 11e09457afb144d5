//! The `[[webhooks]]` section, checked into [`Webhook`]s.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use hubkit_endpoints::{Auth, CustomPath, FileReception, PasswordSpec, PayloadFormat, Webhook};
use hubkit_model::{DeviceRef, ShortId, Topology};
use toml::Spanned;

use crate::document::Item;
use crate::error::Report;
use crate::raw::{AuthType, RawAuth, RawFiles, RawWebhook};
use crate::server::{Limits, check_range};

/// A webhook that passed its own checks, with the span its warnings point at.
struct CheckedWebhook {
    index: usize,
    name_span: Range<usize>,
    webhook: Webhook,
}

/// The webhooks that passed their checks, waiting for the topology.
pub(crate) struct CheckedWebhooks {
    webhooks: Vec<CheckedWebhook>,
    names: HashSet<String>,
}

impl CheckedWebhooks {
    /// Returns the names of all webhooks read from the file, valid or not.
    pub(crate) fn names(&self) -> &HashSet<String> {
        &self.names
    }

    /// Warns about enabled webhooks that no enabled binding records, and returns the
    /// webhooks.
    pub(crate) fn finish(self, topology: &Topology, report: &mut Report<'_>) -> Vec<Webhook> {
        for checked in &self.webhooks {
            let webhook = &checked.webhook;
            let device = DeviceRef::Webhook(webhook.name.clone());
            if webhook.enabled && topology.layers_for(&device).is_empty() {
                let message = format!(
                    "webhook {:?} is enabled but has no enabled binding; it records nothing until bound",
                    webhook.name
                );
                let field = format!("webhooks[{}]", checked.index);
                report.warning(checked.name_span.clone(), &field, message);
            }
        }
        self.webhooks.into_iter().map(|c| c.webhook).collect()
    }
}

/// Names, custom paths and short ids already used, with the webhook that used each.
#[derive(Default)]
struct UsedIdentifiers {
    names: HashMap<String, String>,
    paths: HashMap<String, String>,
    short_ids: HashMap<ShortId, String>,
}

/// Validates the webhooks, recording every problem in `report`.
pub(crate) fn build(raw: Vec<Item<RawWebhook>>, report: &mut Report<'_>) -> CheckedWebhooks {
    let mut used = UsedIdentifiers::default();
    let mut checked = CheckedWebhooks {
        webhooks: Vec::new(),
        names: raw
            .iter()
            .map(|item| item.value.name.get_ref().clone())
            .collect(),
    };
    for item in raw {
        if let Some(webhook) = build_one(item, &mut used, report) {
            checked.webhooks.push(webhook);
        }
    }
    checked
}

fn build_one(
    item: Item<RawWebhook>,
    used: &mut UsedIdentifiers,
    report: &mut Report<'_>,
) -> Option<CheckedWebhook> {
    let prefix = format!("webhooks[{}]", item.index);
    let raw = item.value;
    let errors_before = report.error_count();

    let name = raw.name.get_ref().clone();
    check_name(&raw.name, &prefix, used, report);
    let custom_path = check_custom_path(&raw.custom_path, &prefix, used, report);
    let max_body_bytes = check_range(
        &raw.max_body_bytes,
        &Limits::BODY_BYTES_RANGE,
        &format!("{prefix}.max_body_bytes"),
        report,
    );
    let auth = match raw.auth {
        Some(auth) => build_auth(
            auth,
            &format!("webhook {name:?}"),
            &format!("{prefix}.auth"),
            report,
        ),
        None => Some(Auth::None),
    };
    let files = match raw.files {
        Some(files) => build_files(
            files,
            &name,
            raw.payload_format,
            &format!("{prefix}.files"),
            report,
        ),
        None => FileReception::default(),
    };

    let (Some(custom_path), Some(auth)) = (custom_path, auth) else {
        return None;
    };
    if report.error_count() > errors_before {
        return None;
    }
    let mut webhook = Webhook::new(name, custom_path, raw.payload_format, auth);
    webhook.enabled = raw.enabled.unwrap_or(true);
    webhook.max_body_bytes = max_body_bytes;
    webhook.files = files;
    Some(CheckedWebhook {
        index: item.index,
        name_span: raw.name.span(),
        webhook,
    })
}

fn check_name(
    name: &Spanned<String>,
    prefix: &str,
    used: &mut UsedIdentifiers,
    report: &mut Report<'_>,
) {
    let field = format!("{prefix}.name");
    let text = name.get_ref();
    if text.trim().is_empty() {
        let message = "webhook name is empty; give each webhook a unique name".to_owned();
        report.error(name.span(), &field, message);
        return;
    }
    if text.chars().any(char::is_control) {
        let message = format!("webhook name {text:?} contains a control character");
        report.error(name.span(), &field, message);
        return;
    }
    if let Some(first) = used.names.get(text) {
        let message = format!(
            "webhook name {text:?} is already used by {first}; webhook names must be unique"
        );
        report.error(name.span(), &field, message);
        return;
    }
    used.names.insert(text.clone(), prefix.to_owned());

    let short_id = ShortId::derive("webhook", text);
    if let Some(first) = used.short_ids.get(&short_id) {
        let message = format!(
            "webhook name {text:?} derives short id {short_id}, which {first} already has; rename one of them"
        );
        report.error(name.span(), &field, message);
        return;
    }
    used.short_ids.insert(short_id, prefix.to_owned());
}

fn check_custom_path(
    path: &Spanned<String>,
    prefix: &str,
    used: &mut UsedIdentifiers,
    report: &mut Report<'_>,
) -> Option<CustomPath> {
    let field = format!("{prefix}.custom_path");
    let custom_path = match CustomPath::parse(path.get_ref()) {
        Ok(custom_path) => custom_path,
        Err(err) => {
            report.error(path.span(), &field, err.to_string());
            return None;
        }
    };
    if let Some(first) = used.paths.get(path.get_ref()) {
        let message = format!(
            "custom path {:?} is already used by {first}; custom paths must be unique",
            path.get_ref()
        );
        report.error(path.span(), &field, message);
        return None;
    }
    used.paths.insert(path.get_ref().clone(), prefix.to_owned());
    Some(custom_path)
}

/// Checks the `auth` table of `owner`, such as `webhook "door"`. Messages never contain
/// the password or its hash.
pub(crate) fn build_auth(
    raw: Spanned<RawAuth>,
    owner: &str,
    field: &str,
    report: &mut Report<'_>,
) -> Option<Auth> {
    let span = raw.span();
    let raw = raw.into_inner();
    if raw.kind == AuthType::None {
        for (key, value) in [("username", &raw.username), ("password", &raw.password)] {
            if let Some(value) = value {
                let message = format!(
                    "`{key}` is set but auth type is \"none\"; remove it or use type \"basic\""
                );
                report.error(value.span(), &format!("{field}.{key}"), message);
            }
        }
        return Some(Auth::None);
    }

    for (key, value) in [("username", &raw.username), ("password", &raw.password)] {
        if value.is_none() {
            let message = format!("auth type \"basic\" needs `{key}`");
            report.error(span.clone(), field, message);
        }
    }
    let (Some(username), Some(password)) = (raw.username, raw.password) else {
        return None;
    };

    let username_ok = match hubkit_endpoints::validate_username(username.get_ref()) {
        Ok(()) => true,
        Err(err) => {
            report.error(
                username.span(),
                &format!("{field}.username"),
                err.to_string(),
            );
            false
        }
    };
    let password = build_password(password, owner, &format!("{field}.password"), report)?;
    username_ok.then(|| Auth::Basic {
        username: username.into_inner(),
        password,
    })
}

/// Checks a password: an argon2 PHC string if it starts with `$`, clear text otherwise.
fn build_password(
    password: Spanned<String>,
    owner: &str,
    field: &str,
    report: &mut Report<'_>,
) -> Option<PasswordSpec> {
    let span = password.span();
    let text = password.into_inner();
    if text.starts_with('$') {
        return match hubkit_endpoints::validate_password_hash(&text) {
            Ok(()) => Some(PasswordSpec::Phc(text)),
            Err(err) => {
                report.error(span, field, err.to_string());
                None
            }
        };
    }
    if let Err(err) = hubkit_endpoints::validate_clear_password(&text) {
        report.error(span, field, err.to_string());
        return None;
    }
    let message = format!(
        "password of {owner} is in clear text; replace it with the output of `hubkitd hash-password`"
    );
    report.warning(span, field, message);
    Some(PasswordSpec::Clear(text))
}

/// Checks a webhook's `files` table. A query-params webhook receives no body, so the
/// table is an error there.
fn build_files(
    raw: Spanned<RawFiles>,
    webhook: &str,
    format: PayloadFormat,
    field: &str,
    report: &mut Report<'_>,
) -> FileReception {
    let span = raw.span();
    let raw = raw.into_inner();
    if format == PayloadFormat::QueryParams {
        let message = format!(
            "webhook {webhook:?} has payload format query-params, which receives no body, \
             so `files` does not apply; remove the table or use payload format json"
        );
        report.error(span, field, message);
        return FileReception::default();
    }
    let range = |value, range, key: &str, report: &mut Report<'_>| {
        check_range(value, range, &format!("{field}.{key}"), report)
    };
    let files = FileReception {
        enabled: raw.enabled.unwrap_or(true),
        max_bytes: range(
            &raw.max_bytes,
            &Limits::FILE_BYTES_RANGE,
            "max_bytes",
            report,
        ),
        max_age: range(
            &raw.max_age_hours,
            &Limits::MAX_AGE_HOURS_RANGE,
            "max_age_hours",
            report,
        )
        .map(|hours| std::time::Duration::from_secs(hours * 3600)),
        max_total_bytes: range(
            &raw.max_total_bytes,
            &Limits::TOTAL_BYTES_RANGE,
            "max_total_bytes",
            report,
        ),
    };
    if let (Some(max_bytes), Some(max_total)) = (files.max_bytes, files.max_total_bytes)
        && max_bytes > max_total
    {
        let message = format!(
            "webhook {webhook:?} accepts files of up to {max_bytes} bytes but keeps at most \
             {max_total} bytes of files, so retention removes such a file within a minute of \
             storing it; lower max_bytes or raise max_total_bytes"
        );
        report.warning(span, &format!("{field}.max_total_bytes"), message);
    }
    files
}
