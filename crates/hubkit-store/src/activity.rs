//! Busy time of the writer thread, so that background work can give way to ingest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Time the writer thread spent writing since the store opened.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    busy_ns: AtomicU64,
}

impl Activity {
    /// Runs `work` on the writer thread and adds its duration to the busy time.
    pub(crate) fn time<T>(&self, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(took, Ordering::Relaxed);
        result
    }

    /// Returns the time the writer spent writing so far.
    pub(crate) fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_work_adds_to_busy_time() {
        let activity = Activity::default();
        assert_eq!(activity.busy(), Duration::ZERO);
        let value = activity.time(|| {
            std::thread::sleep(Duration::from_millis(2));
            7
        });
        assert_eq!(value, 7);
        assert!(activity.busy() >= Duration::from_millis(2));
    }
}
