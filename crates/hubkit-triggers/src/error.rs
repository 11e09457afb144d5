//! The error type of the crate.

/// An invalid field path, condition, active-hours window, cron expression, template, action
/// or action step, or a failed template rendering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field path that is neither a valid JSON pointer nor a valid dotted path.
    #[error("invalid field path {path:?}: {rule}")]
    InvalidFieldPath {
        /// The path as written.
        path: String,
        /// The rule that the path breaks.
        rule: &'static str,
    },

    /// An operator name that is not one of the supported operators.
    #[error(
        "unknown operator {name:?}; expected any, =, !=, >, >=, <, <=, range, equals, \
         not_equals, contains, not_contains, starts_with, not_starts_with, ends_with, \
         not_ends_with or regex"
    )]
    UnknownOperator {
        /// The operator name as written.
        name: String,
    },

    /// An operator given the wrong number of operands.
    #[error("operator {operator:?} takes {expected}, but got {count}")]
    OperandCount {
        /// The operator name as written.
        operator: String,
        /// The operands the operator takes, in words.
        expected: &'static str,
        /// The number of operands given.
        count: usize,
    },

    /// A numeric operator whose operand is not a finite number.
    #[error(
        "operator {operator:?} compares numbers, but its operand {operand:?} is not a finite \
         number; use equals, not_equals or another text operator to compare text"
    )]
    InvalidNumber {
        /// The operator name as written.
        operator: String,
        /// The operand as written.
        operand: String,
    },

    /// A range whose minimum is greater than its maximum.
    #[error("range minimum {min} is greater than its maximum {max}")]
    InvalidRange {
        /// The minimum operand.
        min: f64,
        /// The maximum operand.
        max: f64,
    },

    /// A regular expression longer than [`crate::MAX_REGEX_LEN`] bytes.
    #[error("regular expression is {len} bytes long; it must be at most {max} bytes")]
    RegexTooLong {
        /// The length of the pattern in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },

    /// A regular expression that does not parse or compiles past the size limits.
    #[error("invalid regular expression {pattern:?}")]
    InvalidRegex {
        /// The pattern as written.
        pattern: String,
        /// The parse or size error from the regex crate.
        #[source]
        source: regex::Error,
    },

    /// More extra-layer conditions than [`crate::MAX_EXTRA_CONDITIONS`].
    #[error("{count} extra-layer conditions given; a trigger takes at most {max}")]
    TooManyExtraConditions {
        /// The number of extra-layer conditions given.
        count: usize,
        /// The maximum number of extra-layer conditions.
        max: usize,
    },

    /// An active-hours window that is not `HH:MM-HH:MM` with two different times.
    #[error("invalid active hours {window:?}: {rule}")]
    InvalidActiveHours {
        /// The window as written.
        window: String,
        /// The rule that the window breaks.
        rule: &'static str,
    },

    /// A cron expression that does not have exactly six fields.
    #[error(
        "cron expression {expression:?} must have 6 fields, not {count}: second, minute, \
         hour, day of month, month and day of week (nicknames such as @daily are not \
         supported)"
    )]
    CronFieldCount {
        /// The expression as written.
        expression: String,
        /// The number of whitespace-separated fields found.
        count: usize,
    },

    /// A six-field cron expression that the cron parser rejects.
    #[error(
        "invalid cron expression {expression:?}: {reason}; the fields are second 0-59, \
         minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC and day of week \
         0-6 or SUN-SAT"
    )]
    InvalidCron {
        /// The expression as written.
        expression: String,
        /// The error from the cron parser, in the message rather than a source, so that
        /// an error chain does not repeat it.
        reason: croner::errors::CronError,
    },

    /// Template source that does not parse.
    #[error("invalid template at line {line}: {problem}")]
    InvalidTemplate {
        /// The line of the template where parsing failed, counted from 1.
        line: usize,
        /// The syntax rule that the template breaks.
        problem: String,
    },

    /// A template rendering that failed, for example on an undefined variable or after
    /// using up its fuel.
    #[error("template rendering failed at line {line}: {problem}")]
    RenderTemplate {
        /// The line of the template that failed, counted from 1, or 0 when unknown.
        line: usize,
        /// The failure, naming the undefined variable or failed operation.
        problem: String,
    },

    /// A template rendering whose output exceeds the size limit.
    #[error("template output exceeds {max} bytes; render less data or split the step")]
    TemplateOutputTooLarge {
        /// The maximum output size in bytes.
        max: usize,
    },

    /// An action with an empty name or no steps.
    #[error("invalid action {name:?}: {rule}")]
    InvalidAction {
        /// The action's name.
        name: String,
        /// The rule that the action breaks.
        rule: String,
    },

    /// An action step whose settings are out of range.
    #[error("invalid step {} ({component}): {rule}", .index + 1)]
    InvalidStep {
        /// The step's position in the action, counted from 0. The message counts from 1.
        index: usize,
        /// The step's component name, such as `http_request`.
        component: &'static str,
        /// The rule that the step breaks.
        rule: String,
    },

    /// An MQTT quality of service level other than 0, 1 or 2.
    #[error("invalid MQTT QoS {level}; it must be 0, 1 or 2")]
    InvalidQos {
        /// The level as given.
        level: u8,
    },

    /// A rendered File Write path that could leave the folder of action files or names no
    /// file.
    #[error(
        "invalid file path {path:?}: {rule}; use a path relative to the action-files folder of the data directory"
    )]
    InvalidFilePath {
        /// The path as rendered.
        path: String,
        /// The rule that the path breaks.
        rule: &'static str,
    },
}
