//! The HTTPS server of hubkitd. It composes the other hubkit crates: requests to
//! `/webhook/urls/<custom path>` are matched by the endpoint registry
//! (`hubkit-endpoints`), decoded (`hubkit-decode`), bound to layers by the topology
//! (`hubkit-model`) and committed to the store (`hubkit-store`) before the response is sent.
//! Bodies that are not JSON are stored as files by `hubkit-files`. Messages from MQTT
//! brokers (`hubkit-mqtt`) are bound and committed the same way, before the broker gets
//! its acknowledgement.
//!
//! [`Hub`] is the entry point: [`Hub::start`] takes a validated [`hubkit_config::Config`],
//! sets up TLS ([`tls`]), the admin token ([`AdminToken`]) and the listener, and serves:
//!
//! - `GET|POST /webhook/urls/<custom path>`: webhook ingest;
//! - `GET /api/v1/records`, `GET /api/v1/records/stream`, `GET /api/v1/webhooks`,
//!   `GET /api/v1/files/<path>`, `GET /api/v1/brokers`, `GET /api/v1/dead-letters`: the
//!   admin API, behind `Authorization: Bearer <admin token>`;
//! - `GET /api/v1/actions`, `POST /api/v1/actions/<name>/run`, `GET /api/v1/action-runs`
//!   and `GET /api/v1/action-runs/<id>`: actions and their runs;
//! - `GET /healthz` and `GET /metrics` (Prometheus text), without authentication.
//!
//! Triggers (`hubkit-triggers`) are evaluated for every record before it is stored. A
//! trigger that fires stores a pending action run in the same transaction as the record.
//! A runner executes the pending runs afterwards, so ingest never waits for an action.
//!
//! Every error response is an RFC 9457 problem ([`Problem`]). [`Hub::reload`] swaps in a new
//! configuration while requests in flight finish on the old one, and [`Hub::shutdown`]
//! drains connections and closes the store. Process concerns (arguments, signals, logging
//! set-up) are left to the `hubkitd` binary.

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod actions;
mod api;
mod body;
mod files_api;
mod fsutil;
mod hub;
mod ipro;
mod listener;
mod metrics;
mod mqtt;
mod mqtt_api;
mod problem;
mod retention;
mod router;
mod state;
mod stream;
pub mod tls;
mod token;
mod upload;
mod webhook;

pub use actions::{ACTION_CONCURRENCY, ACTION_FILES_FOLDER};
pub use body::ResponseBody;
pub use hub::{DATABASE_FILE, FILES_FOLDER, Hub, HubOptions, ReloadError, StartError};
pub use mqtt::HUB_ID_FILE;
pub use problem::{PROBLEM_TYPE_PREFIX, Problem};
pub use state::RuntimeError;
pub use token::{ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE, AdminToken, TokenError, TokenSource};
pub use webhook::WEBHOOK_PREFIX;

/// Formats an error with all its causes, outermost first, separated by `: `, for logs
/// and status fields that show one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
