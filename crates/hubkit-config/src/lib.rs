//! Loads hubkit's TOML configuration file and checks it into typed settings: the
//! server's listen address, TLS, limits and store settings ([`ServerConfig`]), the
//! areas, layers and bindings ([`hubkit_model::Topology`]), the webhooks
//! ([`hubkit_endpoints::Webhook`]), the MQTT brokers and topic entries
//! ([`hubkit_mqtt::BrokerSettings`], [`hubkit_mqtt::TopicEntry`]), and the actions and
//! triggers ([`hubkit_triggers::Action`], [`hubkit_triggers::Trigger`]).
//!
//! [`load`] and [`parse`] collect every problem in the file, not only the first, as
//! [`ConfigErrors`]: each [`ConfigError`] has the file, line, column and dotted key of
//! the problem. Settings that are valid but risky, such as a clear-text password,
//! become [`ConfigWarning`]s in the returned [`Config`].
//!
//! This crate only reads the one file it is given. Reading the admin token from the
//! environment, generating certificates, opening the store and reloading on `SIGHUP`
//! are left to the server.

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod actions;
mod cameras;
mod document;
mod error;
mod mqtt;
mod raw;
mod server;
mod topology;
mod triggers;
mod webhooks;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use hubkit_endpoints::Webhook;
use hubkit_ipro::Camera;
use hubkit_model::Topology;
use hubkit_mqtt::{BrokerSettings, TopicEntry};
use hubkit_triggers::{Action, Trigger};

pub use actions::{MAX_ACTION_STEPS, MAX_ACTIONS};
pub use cameras::{DEFAULT_CAMERA_BODY_BYTES, IproConfig};
pub use error::{ConfigError, ConfigErrors, ConfigWarning};
pub use server::{
    DEFAULT_DATA_DIR, DEFAULT_LISTEN, Limits, MIN_ADMIN_TOKEN_CHARS, ServerConfig, StoreConfig,
    Synchronous, TlsConfig,
};
pub use triggers::MAX_TRIGGERS;

/// A checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Path of the file the configuration was read from.
    pub file: PathBuf,
    /// Settings of the server.
    pub server: ServerConfig,
    /// Areas, layers and the bindings of webhooks to layers.
    pub topology: Topology,
    /// Webhooks, in file order.
    pub webhooks: Vec<Webhook>,
    /// MQTT brokers, in file order.
    pub brokers: Vec<BrokerSettings>,
    /// MQTT topic entries, in file order.
    pub topics: Vec<TopicEntry>,
    /// i-PRO cameras, in file order.
    pub cameras: Vec<Camera>,
    /// Settings shared by the cameras.
    pub ipro: IproConfig,
    /// Actions, in file order.
    pub actions: Vec<Action>,
    /// Triggers, in file order.
    pub triggers: Vec<Trigger>,
    /// Valid but risky settings, in file order.
    pub warnings: Vec<ConfigWarning>,
}

/// Reads and checks the configuration file at `path`.
///
/// # Errors
///
/// Returns one error naming the path if the file cannot be read or is not UTF-8, and
/// otherwise every error that [`parse`] finds.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|err| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("failed to read the configuration file: {err}"),
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
            let valid = std::str::from_utf8(valid).expect("bytes up to valid_up_to are UTF-8");
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(ConfigError {
                file: path.to_path_buf(),
                line,
                column,
                field: String::new(),
                message: "the file is not valid UTF-8; TOML files must be UTF-8".to_owned(),
            }
            .into());
        }
    };
    parse(&text, path)
}

/// Checks the configuration in `text`; `file` is the path that errors name.
///
/// # Errors
///
/// Returns every syntax error, or, when the syntax is valid, every unknown key, wrong
/// type and broken rule in the file, sorted by position.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let mut report = error::Report::new(text, file);
    let Some(document) = document::read(text, &mut report) else {
        return Err(report
            .finish()
            .expect_err("a document that fails to parse has syntax errors"));
    };

    let server = server::build(document.server, &mut report);
    // Bindings are checked against the areas only when every area is valid, so that
    // a broken area does not also show up as an error in each binding that names it.
    let errors_before_areas = report.error_count();
    let areas = topology::build_areas(document.areas, &mut report);
    let areas_complete = document.complete_areas && report.error_count() == errors_before_areas;
    let checked = webhooks::build(document.webhooks, &mut report);
    let broker_names = mqtt::broker_names(&document.brokers);
    let brokers = mqtt::build_brokers(document.brokers, &mut report);
    let topic_names: std::collections::HashSet<String> = document
        .topics
        .iter()
        .map(|item| item.value.name.get_ref().clone())
        .collect();
    let known_brokers = document.complete_brokers.then_some(&broker_names);
    let topics = mqtt::build_topics(document.topics, known_brokers, &mut report);
    let camera_names = cameras::camera_names(&document.cameras);
    let ipro = cameras::build_ipro(document.ipro, &mut report);
    let checked_cameras = cameras::build_cameras(document.cameras, &mut report);
    let action_names = actions::action_names(&document.actions);
    let actions = actions::build_actions(document.actions, known_brokers, &mut report);
    let known = topology::KnownDevices {
        webhooks: document.complete_webhooks.then_some(checked.names()),
        topics: document.complete_topics.then_some(&topic_names),
        cameras: document.complete_cameras.then_some(&camera_names),
    };
    // Triggers are checked against the areas and bindings only when all of them are
    // valid, so that a broken area or binding does not also show up as an error in each
    // trigger that names its layer or device.
    let trigger_areas = areas_complete.then(|| areas.clone());
    let errors_before_bindings = report.error_count();
    let topology = topology::build_topology(
        document.bindings,
        areas,
        areas_complete,
        &known,
        &mut report,
    );
    let bindings_complete =
        document.complete_bindings && report.error_count() == errors_before_bindings;
    let refs = triggers::TriggerRefs {
        areas: trigger_areas.as_deref(),
        bindings: bindings_complete.then(|| topology.bindings()),
        actions: document.complete_actions.then_some(&action_names),
    };
    let triggers = triggers::build_triggers(document.triggers, &refs, &mut report);
    let webhooks = checked.finish(&topology, &mut report);
    let topics = mqtt::finish_topics(topics, &brokers, &topology, &mut report);
    let cameras = cameras::finish_cameras(checked_cameras, &topology, &mut report);

    let warnings = report.finish()?;
    Ok(Config {
        file: file.to_path_buf(),
        server,
        topology,
        webhooks,
        brokers,
        topics,
        cameras,
        ipro,
        actions,
        triggers,
        warnings,
    })
}
