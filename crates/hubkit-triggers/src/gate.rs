//! The firing state of one trigger: interval, threshold mode, active hours, skip-if-running.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta, Utc};

use crate::Error;

/// The settings of a [`Gate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateConfig {
    /// The cool-down in milliseconds: after a firing, nothing fires until this much time has
    /// passed. `0` turns it off.
    pub interval_ms: u64,
    /// Threshold mode: after a firing, fire again only after the condition was false at
    /// least once.
    pub threshold: bool,
    /// The daily window outside which nothing fires; `None` allows the whole day.
    pub active_hours: Option<ActiveHours>,
    /// Skip-if-running: nothing fires while the trigger's previous action still runs.
    pub skip_if_running: bool,
}

/// The outcome of [`Gate::offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the action.
    Fire,
    /// Do not run the action, for this reason.
    Skip(SkipReason),
}

/// The reason a [`Gate`] did not fire, in the order the gate checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The condition was false.
    ConditionFalse,
    /// The time was outside the active hours.
    OutsideActiveHours,
    /// Threshold mode, and the condition has not been false since the last firing.
    ThresholdNotRearmed,
    /// The cool-down since the last firing has not passed.
    Interval,
    /// Skip-if-running, and the previous action still runs.
    Running,
}

impl SkipReason {
    /// Returns a short `snake_case` name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConditionFalse => "condition_false",
            Self::OutsideActiveHours => "outside_active_hours",
            Self::ThresholdNotRearmed => "threshold_not_rearmed",
            Self::Interval => "interval",
            Self::Running => "running",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The firing state of one trigger.
///
/// The caller evaluates the trigger's conditions for each record and passes the result to
/// [`Gate::offer`] with the current time. The gate keeps its state in memory only.
#[derive(Debug, Clone)]
pub struct Gate {
    config: GateConfig,
    last_fired: Option<DateTime<Utc>>,
    armed: bool,
}

impl Gate {
    /// Creates a gate that has never fired and is armed.
    pub fn new(config: GateConfig) -> Self {
        Self {
            config,
            last_fired: None,
            armed: true,
        }
    }

    /// Returns the settings of the gate.
    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Returns the time of the last firing, if any.
    pub fn last_fired(&self) -> Option<DateTime<Utc>> {
        self.last_fired
    }

    /// Returns false in threshold mode after a firing, until the condition is false once.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Decides whether one evaluation of the trigger fires its action.
    ///
    /// `condition_true` is the result of the trigger's conditions for one record, and
    /// `running` is true while the trigger's previous action still runs. The checks run in
    /// the order of [`SkipReason`], and the first that fails gives the reason.
    ///
    /// - A false condition re-arms threshold mode, also outside the active hours. A
    ///   condition that turned true outside the window therefore fires at the first true
    ///   evaluation inside it.
    /// - Only a firing disarms threshold mode and starts the cool-down. An evaluation
    ///   skipped for any reason changes neither, so with skip-if-running the first true
    ///   evaluation after the run ends fires.
    /// - If `now` is before the last firing because the wall clock stepped back, the
    ///   cool-down restarts at `now`, so the step delays the next firing by at most one
    ///   interval.
    pub fn offer(&mut self, now: DateTime<Utc>, condition_true: bool, running: bool) -> Decision {
        if !condition_true {
            self.armed = true;
            return Decision::Skip(SkipReason::ConditionFalse);
        }
        if let Some(hours) = &self.config.active_hours
            && !hours.contains(now)
        {
            return Decision::Skip(SkipReason::OutsideActiveHours);
        }
        if self.config.threshold && !self.armed {
            return Decision::Skip(SkipReason::ThresholdNotRearmed);
        }
        if self.in_cool_down(now) {
            return Decision::Skip(SkipReason::Interval);
        }
        if self.config.skip_if_running && running {
            return Decision::Skip(SkipReason::Running);
        }

        self.last_fired = Some(now);
        self.armed = false;
        Decision::Fire
    }

    fn in_cool_down(&mut self, now: DateTime<Utc>) -> bool {
        let Some(last) = self.last_fired else {
            return false;
        };
        if now < last {
            self.last_fired = Some(now);
            return self.config.interval_ms > 0;
        }

        // An interval beyond TimeDelta's range (about 292 million years) never ends.
        let interval = i64::try_from(self.config.interval_ms)
            .ok()
            .and_then(TimeDelta::try_milliseconds);
        match interval {
            Some(interval) => now - last < interval,
            None => true,
        }
    }
}

const EQUAL_TIMES_RULE: &str =
    "the start and the end are equal; leave active hours out to allow the whole day";

/// A daily window of wall-clock time at a fixed offset from UTC.
///
/// The start is included and the end is not. A window whose end is before its start
/// crosses midnight: `22:00-06:00` covers 22:00 to 05:59:59 of the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    start: NaiveTime,
    end: NaiveTime,
    offset: FixedOffset,
}

impl ActiveHours {
    /// Creates a window from its start, its end and the offset of its wall clock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidActiveHours`] when the start and the end are equal.
    pub fn new(start: NaiveTime, end: NaiveTime, offset: FixedOffset) -> Result<Self, Error> {
        if start == end {
            return Err(Error::InvalidActiveHours {
                window: format!("{}-{}", start.format("%H:%M"), end.format("%H:%M")),
                rule: EQUAL_TIMES_RULE,
            });
        }
        Ok(Self { start, end, offset })
    }

    /// Parses a window written `HH:MM-HH:MM` with 24-hour times, such as `09:00-17:30`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidActiveHours`] when the text has another shape, a time is out of
    /// range, or the start and the end are equal.
    pub fn parse(window: &str, offset: FixedOffset) -> Result<Self, Error> {
        let invalid = |rule| Error::InvalidActiveHours {
            window: window.to_owned(),
            rule,
        };
        let invalid_shape =
            || invalid("expected HH:MM-HH:MM with 24-hour times, such as 09:00-17:30");

        let (start, end) = window.trim().split_once('-').ok_or_else(invalid_shape)?;
        let start = parse_hh_mm(start).ok_or_else(invalid_shape)?;
        let end = parse_hh_mm(end).ok_or_else(invalid_shape)?;
        if start == end {
            return Err(invalid(EQUAL_TIMES_RULE));
        }
        Ok(Self { start, end, offset })
    }

    /// Returns the first minute inside the window.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Returns the first minute after the window.
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// Returns the offset from UTC of the window's wall clock.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Returns true when `now`, on the window's wall clock, is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let time = now.with_timezone(&self.offset).time();
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            self.start <= time || time < self.end
        }
    }
}

/// Parses `HH:MM` with exactly two digits each, hours 00 to 23 and minutes 00 to 59.
fn parse_hh_mm(text: &str) -> Option<NaiveTime> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    NaiveTime::from_hms_opt(hours.parse().ok()?, minutes.parse().ok()?, 0)
}

#[cfg(test)]
mod tests;
