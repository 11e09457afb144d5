//! The key layer's condition combined with conditions on up to four other layers.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::{Condition, Error};

/// The maximum number of extra-layer conditions of a trigger, the same as in Gravio's
/// trigger settings.
pub const MAX_EXTRA_CONDITIONS: usize = 4;

/// The logical operator that joins the extra-layer conditions of a [`ConditionSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combination {
    /// Every extra-layer condition must be true.
    #[default]
    And,
    /// At least one extra-layer condition must be true.
    Or,
}

/// A condition on the latest record of another layer than the trigger's key layer.
#[derive(Debug, Clone)]
pub struct ExtraCondition {
    /// The condition on that record's `Data`.
    pub condition: Condition,
    /// The maximum age in milliseconds of that record, measured from the evaluation time; an
    /// older record counts as false.
    pub max_age_ms: u64,
}

/// The conditions of a device trigger: the key layer's condition and the extra-layer
/// conditions, evaluated as `key AND (extra1 op extra2 op ...)` where `op` is the
/// [`Combination`].
#[derive(Debug, Clone)]
pub struct ConditionSet {
    key: Condition,
    combination: Combination,
    extras: Vec<ExtraCondition>,
}

impl ConditionSet {
    /// Creates a set from the key layer's condition and up to [`MAX_EXTRA_CONDITIONS`]
    /// extra-layer conditions.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyExtraConditions`] when more extra-layer conditions are given.
    pub fn new(
        key: Condition,
        combination: Combination,
        extras: Vec<ExtraCondition>,
    ) -> Result<Self, Error> {
        if extras.len() > MAX_EXTRA_CONDITIONS {
            return Err(Error::TooManyExtraConditions {
                count: extras.len(),
                max: MAX_EXTRA_CONDITIONS,
            });
        }
        Ok(Self {
            key,
            combination,
            extras,
        })
    }

    /// Returns the key layer's condition.
    pub fn key(&self) -> &Condition {
        &self.key
    }

    /// Returns the logical operator that joins the extra-layer conditions.
    pub fn combination(&self) -> Combination {
        self.combination
    }

    /// Returns the extra-layer conditions in order.
    pub fn extras(&self) -> &[ExtraCondition] {
        &self.extras
    }

    /// Evaluates the set for a record of the key layer at time `now`.
    ///
    /// `latest[i]` is the timestamp and `Data` of the latest record of the layer of
    /// `extras()[i]`, or `None` when that layer has no record. A missing entry, a record
    /// older than its `max_age_ms` and a false condition all count as false. A record with a
    /// timestamp after `now` counts as fresh. With no extra-layer conditions the key layer's
    /// condition decides alone.
    pub fn evaluate(
        &self,
        now: DateTime<Utc>,
        key_data: &Value,
        latest: &[Option<(DateTime<Utc>, &Value)>],
    ) -> bool {
        if !self.key.evaluate(key_data) {
            return false;
        }
        if self.extras.is_empty() {
            return true;
        }

        let mut results = self.extras.iter().enumerate().map(|(index, extra)| {
            let record = latest.get(index).copied().flatten();
            record.is_some_and(|(timestamp, data)| {
                is_fresh(now, timestamp, extra.max_age_ms) && extra.condition.evaluate(data)
            })
        });
        match self.combination {
            Combination::And => results.all(|result| result),
            Combination::Or => results.any(|result| result),
        }
    }
}

fn is_fresh(now: DateTime<Utc>, timestamp: DateTime<Utc>, max_age_ms: u64) -> bool {
    // A maximum age beyond TimeDelta's range (about 292 million years) never expires.
    let Some(max_age) = i64::try_from(max_age_ms)
        .ok()
        .and_then(TimeDelta::try_milliseconds)
    else {
        return true;
    };
    now - timestamp <= max_age
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn ago(milliseconds: i64) -> DateTime<Utc> {
        now() - TimeDelta::milliseconds(milliseconds)
    }

    fn extra(operator: &str, operand: &str, max_age_ms: u64) -> ExtraCondition {
        ExtraCondition {
            condition: Condition::parse("", operator, &[operand]).unwrap(),
            max_age_ms,
        }
    }

    fn set(combination: Combination, extras: Vec<ExtraCondition>) -> ConditionSet {
        let key = Condition::parse("temperature", ">", &["30"]).unwrap();
        ConditionSet::new(key, combination, extras).unwrap()
    }

    #[test]
    fn key_alone_decides_without_extras() {
        let set = set(Combination::And, Vec::new());
        assert!(set.evaluate(now(), &json!({"temperature": 35}), &[]));
        assert!(!set.evaluate(now(), &json!({"temperature": 20}), &[]));
    }

    #[test]
    fn and_needs_every_extra() {
        let set = set(
            Combination::And,
            vec![extra("=", "1", 1000), extra("equals", "open", 1000)],
        );
        let hot = json!({"temperature": 35});
        let one = json!(1);
        let open = json!("open");
        let closed = json!("closed");
        assert!(set.evaluate(now(), &hot, &[Some((ago(0), &one)), Some((ago(0), &open))]));
        assert!(!set.evaluate(
            now(),
            &hot,
            &[Some((ago(0), &one)), Some((ago(0), &closed))]
        ));
        assert!(!set.evaluate(now(), &hot, &[Some((ago(0), &one)), None]));
        assert!(!set.evaluate(now(), &hot, &[Some((ago(0), &one))]));
        let cold = json!({"temperature": 20});
        assert!(!set.evaluate(now(), &cold, &[Some((ago(0), &one)), Some((ago(0), &open))]));
    }

    #[test]
    fn or_needs_one_extra() {
        let set = set(
            Combination::Or,
            vec![extra("=", "1", 1000), extra("equals", "open", 1000)],
        );
        let hot = json!({"temperature": 35});
        let zero = json!(0);
        let open = json!("open");
        let closed = json!("closed");
        assert!(set.evaluate(now(), &hot, &[Some((ago(0), &zero)), Some((ago(0), &open))]));
        assert!(!set.evaluate(
            now(),
            &hot,
            &[Some((ago(0), &zero)), Some((ago(0), &closed))]
        ));
        assert!(!set.evaluate(now(), &hot, &[None, None]));
        assert!(!set.evaluate(now(), &hot, &[]));
        // The key layer's condition is always joined with And.
        let cold = json!({"temperature": 20});
        assert!(!set.evaluate(
            now(),
            &cold,
            &[Some((ago(0), &zero)), Some((ago(0), &open))]
        ));
    }

    #[test]
    fn old_records_count_as_false() {
        let set = set(Combination::And, vec![extra("!=", "0", 5000)]);
        let hot = json!({"temperature": 35});
        let value = json!(1);
        let cases = [
            (ago(0), true),
            (ago(5000), true),
            (ago(5001), false),
            (ago(-60_000), true),
        ];
        for (timestamp, expected) in cases {
            let got = set.evaluate(now(), &hot, &[Some((timestamp, &value))]);
            assert_eq!(got, expected, "record at {timestamp}");
        }
    }

    #[test]
    fn new_rejects_five_extras() {
        let key = Condition::parse("", "any", &[]).unwrap();
        let extras = (0..5).map(|_| extra(">", "0", 1000)).collect();
        let err = ConditionSet::new(key, Combination::And, extras).unwrap_err();
        assert!(matches!(
            err,
            Error::TooManyExtraConditions { count: 5, max: 4 }
        ));
    }
}
