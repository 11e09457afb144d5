//! Trigger evaluation for hubkit, without I/O.
//!
//! [`FieldPath`] names the field of a record's `Data` that a condition reads, as a JSON
//! pointer or a dotted path. [`Condition`] applies an [`Operator`] to that field, and
//! [`ConditionSet`] joins the key layer's condition with up to four [`ExtraCondition`]s on
//! other layers by a [`Combination`]. [`Gate`] keeps one trigger's firing state (interval,
//! threshold mode, [`ActiveHours`], skip-if-running) and turns each evaluation into a
//! [`Decision`]. [`CronSchedule`] computes the firing times of a timer trigger.
//! A [`Trigger`] joins a [`TriggerSource`] (a layer's records or a cron schedule), a gate
//! configuration and the name of the action it runs.
//! [`Template`] renders an action step's body, URL, topic or payload from the trigger's data.
//! An [`Action`] is a checked list of [`Step`]s, and [`run_action`] runs one, passing each
//! step's output to the next and doing the I/O through the caller's [`Effects`].
//!
//! Every function takes values and the current time from the caller. Reading records,
//! storing pending runs and the I/O of action steps are left to other crates.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use hubkit_triggers::{Condition, Decision, Gate, GateConfig, SkipReason};
//! use serde_json::json;
//!
//! let hot = Condition::parse("temperature", ">", &["30"])?;
//! let mut gate = Gate::new(GateConfig { threshold: true, ..GateConfig::default() });
//! let now = Utc.with_ymd_and_hms(2026, 7, 1, 14, 0, 0).unwrap();
//!
//! let fired = gate.offer(now, hot.evaluate(&json!({"temperature": 35})), false);
//! assert_eq!(fired, Decision::Fire);
//! let again = gate.offer(now, hot.evaluate(&json!({"temperature": "36.5"})), false);
//! assert_eq!(again, Decision::Skip(SkipReason::ThresholdNotRearmed));
//! # Ok::<(), hubkit_triggers::Error>(())
//! ```

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod action;
mod combination;
mod condition;
mod error;
mod gate;
mod path;
mod schedule;
mod template;
mod trigger;

pub use action::{
    Action, Backoff, Component, Effects, HttpMethod, HttpRequest, HttpResponse, LogLevel,
    MAX_BACKOFF, MAX_HTTP_ATTEMPTS, MAX_HTTP_TIMEOUT, MAX_OUTPUT_PREVIEW, MAX_SLEEP, QoS,
    RunOutcome, Step, StepRecord, StepStatus, WriteMode, check_relative_path, run_action,
};
pub use combination::{Combination, ConditionSet, ExtraCondition, MAX_EXTRA_CONDITIONS};
pub use condition::{
    Condition, MAX_REGEX_LEN, NumberOperator, Operator, REGEX_DFA_SIZE_LIMIT, REGEX_NEST_LIMIT,
    REGEX_SIZE_LIMIT, TextOperator,
};
pub use error::Error;
pub use gate::{ActiveHours, Decision, Gate, GateConfig, SkipReason};
pub use path::FieldPath;
pub use schedule::CronSchedule;
pub use template::{MAX_TEMPLATE_FUEL, MAX_TEMPLATE_OUTPUT, StepContext, Template};
pub use trigger::{LayerName, LayerSource, Trigger, TriggerSource};
