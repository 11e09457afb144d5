//! Reading samples and histograms from the Prometheus text that hubkitd's `/metrics`
//! returns.

/// A histogram read from Prometheus text: cumulative buckets, sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Upper bound (`le`) and cumulative count of each bucket, in the order of the text,
    /// which lists them by increasing bound and ends with `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    /// Sum of the observed values.
    pub sum: f64,
    /// Number of observations.
    pub count: f64,
}

impl Histogram {
    /// Returns the observations made after `earlier` was read from the same histogram.
    /// Buckets missing from `earlier` count as empty there.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(bound, count)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(other, _)| *other == bound)
                    .map_or(0.0, |(_, count)| *count);
                (bound, count - before)
            })
            .collect();
        Histogram {
            buckets,
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// Returns the mean observation, or `None` without observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// Returns the bounds of the bucket that contains the median observation: the
    /// previous bucket's upper bound (0 for the first) and its own.
    pub fn median_bucket(&self) -> Option<(f64, f64)> {
        if self.count <= 0.0 {
            return None;
        }
        let half = self.count / 2.0;
        let mut lower = 0.0;
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= half {
                return Some((lower, bound));
            }
            lower = bound;
        }
        None
    }
}

/// Returns the value of the sample named exactly `name`, without labels.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, rest) = line.split_once(' ')?;
        if series != name {
            return None;
        }
        parse_value(rest)
    })
}

/// Returns the histogram `name`: its `name_bucket{le="..."}`, `name_sum` and
/// `name_count` samples. Returns `None` if the sum or count is missing.
pub fn histogram(text: &str, name: &str) -> Option<Histogram> {
    let bucket_prefix = format!("{name}_bucket{{");
    let mut buckets = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&bucket_prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let (Some(bound), Some(count)) = (bucket_bound(labels), parse_value(value)) else {
            continue;
        };
        buckets.push((bound, count));
    }
    Some(Histogram {
        buckets,
        sum: sample(text, &format!("{name}_sum"))?,
        count: sample(text, &format!("{name}_count"))?,
    })
}

/// Returns the `le` label of a bucket's label set as a number; `+Inf` is infinity.
fn bucket_bound(labels: &str) -> Option<f64> {
    labels.split(',').find_map(|label| {
        let value = label.trim().strip_prefix("le=\"")?.strip_suffix('"')?;
        match value {
            "+Inf" => Some(f64::INFINITY),
            other => other.parse().ok(),
        }
    })
}

/// Parses the value after the series, ignoring a timestamp or exemplar that follows it.
fn parse_value(rest: &str) -> Option<f64> {
    rest.split_whitespace().next()?.parse().ok()
}
