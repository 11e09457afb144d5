//! Topic filters and topic names (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2).

use std::fmt;

use thiserror::Error;

/// Maximum length of a topic name or filter in bytes, because MQTT encodes it in two bytes.
pub const MAX_TOPIC_BYTES: usize = 65_535;

/// Prefix of a shared subscription, `$share/<group>/<filter>`.
const SHARE_PREFIX: &str = "$share/";

/// A topic filter or topic name that breaks the MQTT rules.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// The value is empty.
    #[error("topic {kind} is empty; give at least one character")]
    Empty {
        /// `filter` or `name`.
        kind: &'static str,
    },
    /// The value is longer than [`MAX_TOPIC_BYTES`].
    #[error("topic {kind} is {length} bytes; MQTT allows at most 65535")]
    TooLong {
        /// `filter` or `name`.
        kind: &'static str,
        /// Length in bytes.
        length: usize,
    },
    /// The value contains U+0000, which MQTT forbids in topics.
    #[error("topic {kind} {value:?} contains the null character U+0000, which MQTT forbids")]
    NullCharacter {
        /// `filter` or `name`.
        kind: &'static str,
        /// The value.
        value: String,
    },
    /// A `#` that is not a whole level at the end.
    #[error(
        "topic filter {value:?} has `#` at level {level}; `#` must be a level of its own \
         and the last one, as in sensors/#"
    )]
    MisplacedMultiLevel {
        /// The filter.
        value: String,
        /// The level, counted from 1.
        level: usize,
    },
    /// A `+` that shares its level with other characters.
    #[error(
        "topic filter {value:?} has `+` inside level {level}; `+` must be a level of its \
         own, as in sensors/+/temperature"
    )]
    MisplacedSingleLevel {
        /// The filter.
        value: String,
        /// The level, counted from 1.
        level: usize,
    },
    /// A shared subscription without a valid group or filter.
    #[error("shared subscription {value:?} is invalid: {reason}; use $share/<group>/<filter>")]
    InvalidShare {
        /// The filter.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A wildcard in a topic name, which only filters may contain.
    #[error("topic name {value:?} contains `{wildcard}`; wildcards are allowed only in filters")]
    WildcardInName {
        /// The name.
        value: String,
        /// The wildcard found.
        wildcard: char,
    },
}

/// A checked topic filter, with the shared-subscription prefix split off.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter {
    /// The filter as subscribed, `$share/...` included.
    subscription: String,
    /// Byte offset in `subscription` where the matched filter starts.
    filter_start: usize,
}

impl TopicFilter {
    /// Checks `value` against the MQTT rules for topic filters.
    ///
    /// # Errors
    ///
    /// [`FilterError`] naming the rule that `value` breaks.
    pub fn parse(value: &str) -> Result<TopicFilter, FilterError> {
        check_common(value, "filter")?;
        let filter_start = match value.strip_prefix(SHARE_PREFIX) {
            Some(rest) => share_filter_start(value, rest)?,
            None => 0,
        };
        check_levels(value, &value[filter_start..])?;
        Ok(TopicFilter {
            subscription: value.to_owned(),
            filter_start,
        })
    }

    /// Returns the filter to subscribe with, including any `$share/<group>/` prefix.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// Returns the filter that received topics are matched against, without any
    /// `$share/<group>/` prefix.
    pub fn filter(&self) -> &str {
        &self.subscription[self.filter_start..]
    }

    /// Returns the shared-subscription group, if the filter has one.
    pub fn share_group(&self) -> Option<&str> {
        if self.filter_start == 0 {
            return None;
        }
        let rest = &self.subscription[SHARE_PREFIX.len()..self.filter_start];
        Some(rest.trim_end_matches('/'))
    }

    /// Returns whether the topic name `topic` matches the filter.
    ///
    /// `+` matches exactly one level, which may be empty. `#` matches any number of
    /// levels, including none, so `sensors/#` matches `sensors` too. A filter whose first
    /// level is a wildcard never matches a topic that starts with `$`, such as `$SYS/...`.
    pub fn matches(&self, topic: &str) -> bool {
        let filter = self.filter();
        if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
            return false;
        }
        let mut topic_levels = topic.split('/');
        for level in filter.split('/') {
            match level {
                "#" => return true,
                "+" => {
                    if topic_levels.next().is_none() {
                        return false;
                    }
                }
                exact => {
                    if topic_levels.next() != Some(exact) {
                        return false;
                    }
                }
            }
        }
        topic_levels.next().is_none()
    }

    /// Returns whether every topic that `other` matches also matches this filter, and
    /// both share the same shared-subscription group (or have none).
    ///
    /// A broker may send one copy of a message per matching subscription (MQTT 3.1.1
    /// section 3.3.5), so a hub subscribes only to filters that no other filter covers.
    pub fn covers(&self, other: &TopicFilter) -> bool {
        if self.share_group() != other.share_group() {
            return false;
        }
        let mut wide = self.filter().split('/');
        let mut narrow = other.filter().split('/');
        let mut first = true;
        loop {
            let (wide_level, narrow_level) = (wide.next(), narrow.next());
            // A first-level wildcard never matches `$` topics, which a literal can name.
            let narrow_is_dollar = first && narrow_level.is_some_and(|l| l.starts_with('$'));
            first = false;
            match (wide_level, narrow_level) {
                (Some("#"), _) => return !narrow_is_dollar,
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some("+"), Some(level)) => {
                    if level == "#" || narrow_is_dollar {
                        return false;
                    }
                }
                (Some(exact), Some(level)) => {
                    if exact != level {
                        return false;
                    }
                }
            }
        }
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subscription)
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicFilter({:?})", self.subscription)
    }
}

/// Checks a topic name to publish to: non-empty, at most [`MAX_TOPIC_BYTES`], no U+0000
/// and no wildcard.
///
/// # Errors
///
/// [`FilterError`] naming the rule that `value` breaks.
pub fn validate_topic_name(value: &str) -> Result<(), FilterError> {
    check_common(value, "name")?;
    if let Some(wildcard) = value.chars().find(|c| matches!(c, '+' | '#')) {
        return Err(FilterError::WildcardInName {
            value: value.to_owned(),
            wildcard,
        });
    }
    Ok(())
}

fn check_common(value: &str, kind: &'static str) -> Result<(), FilterError> {
    if value.is_empty() {
        return Err(FilterError::Empty { kind });
    }
    if value.len() > MAX_TOPIC_BYTES {
        return Err(FilterError::TooLong {
            kind,
            length: value.len(),
        });
    }
    if value.contains('\0') {
        return Err(FilterError::NullCharacter {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Returns where the filter of `$share/<group>/<filter>` starts in `value`, `rest` being
/// the part after `$share/`.
fn share_filter_start(value: &str, rest: &str) -> Result<usize, FilterError> {
    let invalid = |reason| FilterError::InvalidShare {
        value: value.to_owned(),
        reason,
    };
    let Some((group, filter)) = rest.split_once('/') else {
        return Err(invalid("it has no filter after the group"));
    };
    if group.is_empty() {
        return Err(invalid("the group name is empty"));
    }
    if group.contains(['+', '#']) {
        return Err(invalid("the group name contains a wildcard"));
    }
    if filter.is_empty() {
        return Err(invalid("the filter after the group is empty"));
    }
    Ok(SHARE_PREFIX.len() + group.len() + 1)
}

fn check_levels(value: &str, filter: &str) -> Result<(), FilterError> {
    let levels: Vec<&str> = filter.split('/').collect();
    for (index, level) in levels.iter().enumerate() {
        let number = index + 1;
        if level.contains('#') && (*level != "#" || number != levels.len()) {
            return Err(FilterError::MisplacedMultiLevel {
                value: value.to_owned(),
                level: number,
            });
        }
        if level.contains('+') && *level != "+" {
            return Err(FilterError::MisplacedSingleLevel {
                value: value.to_owned(),
                level: number,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
