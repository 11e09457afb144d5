//! Selection of the stored files that a retention policy removes. This module does no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Limits on the files one owner keeps. A policy with neither limit keeps every file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Files received longer ago than this are removed.
    pub max_age: Option<Duration>,
    /// While the owner's files take more bytes than this, the oldest are removed.
    pub max_total_bytes: Option<u64>,
}

impl Retention {
    /// Returns whether the policy removes anything at all.
    pub fn is_limited(&self) -> bool {
        self.max_age.is_some() || self.max_total_bytes.is_some()
    }
}

/// Reason a file was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// It was older than the maximum age.
    MaxAge,
    /// The owner's files exceeded the maximum total size.
    MaxTotalBytes,
}

impl RemovalReason {
    /// Returns the reason as records show it.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::MaxAge => "max-age",
            RemovalReason::MaxTotalBytes => "max-total-bytes",
        }
    }
}

/// Size and receipt time of one stored file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAge {
    /// Size in bytes.
    pub size: u64,
    /// Time the file was received.
    pub received_at: DateTime<Utc>,
}

/// Returns the indexes of the files that `policy` removes at `now`, with the reason
/// for each. `files` must be ordered oldest first; the result keeps that order.
///
/// Files older than the maximum age go first. Then, while the remaining files exceed the
/// maximum total size, the oldest of them go.
pub fn select_expired(
    files: &[FileAge],
    policy: &Retention,
    now: DateTime<Utc>,
) -> Vec<(usize, RemovalReason)> {
    let mut expired = Vec::new();
    let cutoff = policy
        .max_age
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .and_then(|age| now.checked_sub_signed(age));
    let mut kept_from = 0;
    if let Some(cutoff) = cutoff {
        for (index, file) in files.iter().enumerate() {
            if file.received_at >= cutoff {
                break;
            }
            expired.push((index, RemovalReason::MaxAge));
            kept_from = index + 1;
        }
    }
    if let Some(max_total) = policy.max_total_bytes {
        let mut total: u64 = files[kept_from..].iter().map(|file| file.size).sum();
        for (index, file) in files.iter().enumerate().skip(kept_from) {
            if total <= max_total {
                break;
            }
            expired.push((index, RemovalReason::MaxTotalBytes));
            total -= file.size;
        }
    }
    expired
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_796_376_615 + seconds, 0)
            .single()
            .expect("valid time")
    }

    fn files(list: &[(u64, i64)]) -> Vec<FileAge> {
        list.iter()
            .map(|&(size, seconds)| FileAge {
                size,
                received_at: at(seconds),
            })
            .collect()
    }

    #[test]
    fn unlimited_policy_keeps_everything() {
        let list = files(&[(10, 0), (10, 1)]);
        assert!(select_expired(&list, &Retention::default(), at(1_000_000)).is_empty());
    }

    #[test]
    fn max_age_removes_older_files() {
        let list = files(&[(10, 0), (10, 50), (10, 100)]);
        let policy = Retention {
            max_age: Some(Duration::from_secs(60)),
            max_total_bytes: None,
        };
        let expired = select_expired(&list, &policy, at(120));
        assert_eq!(
            expired,
            vec![(0, RemovalReason::MaxAge), (1, RemovalReason::MaxAge)]
        );
    }

    #[test]
    fn file_exactly_at_max_age_is_kept() {
        let list = files(&[(10, 60)]);
        let policy = Retention {
            max_age: Some(Duration::from_secs(60)),
            max_total_bytes: None,
        };
        assert!(select_expired(&list, &policy, at(120)).is_empty());
    }

    #[test]
    fn max_total_removes_oldest_until_under() {
        let list = files(&[(40, 0), (30, 1), (20, 2), (10, 3)]);
        let policy = Retention {
            max_age: None,
            max_total_bytes: Some(35),
        };
        let expired = select_expired(&list, &policy, at(10));
        assert_eq!(
            expired,
            vec![
                (0, RemovalReason::MaxTotalBytes),
                (1, RemovalReason::MaxTotalBytes)
            ]
        );
    }

    #[test]
    fn total_exactly_at_limit_is_kept() {
        let list = files(&[(20, 0), (15, 1)]);
        let policy = Retention {
            max_age: None,
            max_total_bytes: Some(35),
        };
        assert!(select_expired(&list, &policy, at(10)).is_empty());
    }

    #[test]
    fn both_limits_combine() {
        let list = files(&[(10, 0), (50, 100), (50, 101), (10, 102)]);
        let policy = Retention {
            max_age: Some(Duration::from_secs(50)),
            max_total_bytes: Some(60),
        };
        let expired = select_expired(&list, &policy, at(110));
        assert_eq!(
            expired,
            vec![
                (0, RemovalReason::MaxAge),
                (1, RemovalReason::MaxTotalBytes)
            ]
        );
    }

    #[test]
    fn zero_total_removes_all() {
        let list = files(&[(1, 0), (1, 1)]);
        let policy = Retention {
            max_age: None,
            max_total_bytes: Some(0),
        };
        assert_eq!(select_expired(&list, &policy, at(2)).len(), 2);
    }
}
