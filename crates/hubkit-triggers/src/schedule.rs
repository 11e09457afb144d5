//! Cron schedules of timer triggers.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::Error;

/// The firing times of a timer trigger, from a six-field cron expression.
///
/// The fields are, in order: second (0-59), minute (0-59), hour (0-23), day of month (1-31),
/// month (1-12 or `JAN`-`DEC`) and day of week (0-6 from Sunday, or `SUN`-`SAT`; 7 is also
/// Sunday). Each field takes `*`, lists (`1,5`), ranges (`1-5`) and steps (`*/5`, `10-30/5`),
/// and the two day fields also take `?` for any day. The `croner` crate parses them, which
/// also accepts its extensions `L` (last), `W` (nearest weekday) and `#` (nth weekday).
///
/// When both day fields are restricted, a day matches either of them, as in Vixie cron:
/// `0 0 0 1 * MON` fires on the first of each month and on every Monday.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    offset: FixedOffset,
}

impl CronSchedule {
    /// Parses a six-field cron expression whose times are read on a wall clock at `offset`
    /// from UTC.
    ///
    /// NOTE: a fixed offset has no daylight saving time, so a schedule for a zone that
    /// changes its offset drifts by an hour for part of the year.
    ///
    /// # Errors
    ///
    /// [`Error::CronFieldCount`] when the expression does not have six fields (a five-field
    /// crontab line, a seven-field line with a year, or an `@daily` nickname), and
    /// [`Error::InvalidCron`] when a field is invalid.
    pub fn parse(expression: &str, offset: FixedOffset) -> Result<Self, Error> {
        let count = expression.split_whitespace().count();
        if count != 6 {
            return Err(Error::CronFieldCount {
                expression: expression.to_owned(),
                count,
            });
        }

        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(expression)
            .map_err(|reason| Error::InvalidCron {
                expression: expression.to_owned(),
                reason,
            })?;
        Ok(Self {
            expression: expression.to_owned(),
            cron,
            offset,
        })
    }

    /// Returns the expression as it was written.
    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// Returns the offset from UTC of the schedule's wall clock.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Returns the first firing time strictly after `now`, or `None` when the expression
    /// matches no time before the year 5000 (such as `0 0 0 30 2 *`, February 30).
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.offset);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

#[cfg(test)]
mod tests;
