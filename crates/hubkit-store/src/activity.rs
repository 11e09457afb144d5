//! When the writer last committed records, so that background work can give way to
//! ingest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Time of the latest commit that stored records.
#[derive(Debug)]
pub(crate) struct Activity {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the end of the latest commit with records, plus one,
    /// or 0 before the first.
    last: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Notes a commit that stored records.
    pub(crate) fn mark(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.last.store(now + 1, Ordering::Relaxed);
    }

    /// Returns whether a commit stored records within `window` before now.
    pub(crate) fn within(&self, window: Duration) -> bool {
        match self.last.load(Ordering::Relaxed) {
            0 => false,
            last => {
                let at = self.epoch + Duration::from_nanos(last - 1);
                at.elapsed() <= window
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_recent_until_the_window_passes() {
        let activity = Activity::new();
        assert!(!activity.within(Duration::from_secs(3600)));
        activity.mark();
        assert!(activity.within(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(!activity.within(Duration::from_millis(1)));
    }
}
