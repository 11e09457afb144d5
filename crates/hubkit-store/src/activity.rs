//! Busy time of the writer thread, so that background work can give way to ingest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Time the writer thread spent writing since the store opened.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    busy_ns: AtomicU64,
    /// Busy time of batches that held more than one write request.
    contended_ns: AtomicU64,
}

impl Activity {
    /// Runs `work` on the writer thread and adds its duration to the busy time.
    pub(crate) fn time<T>(&self, work: impl FnOnce() -> T) -> T {
        self.time_batch(1, work)
    }

    /// Runs `work`, a batch of `requests` write requests, on the writer thread and adds its
    /// duration to the busy time, and to the contended time when `requests` is above 1.
    pub(crate) fn time_batch<T>(&self, requests: usize, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(took, Ordering::Relaxed);
        if requests > 1 {
            self.contended_ns.fetch_add(took, Ordering::Relaxed);
        }
        result
    }

    /// Returns the time the writer spent writing so far.
    pub(crate) fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }

    /// Returns the time the writer spent on batches of more than one write request so far.
    pub(crate) fn contended(&self) -> Duration {
        Duration::from_nanos(self.contended_ns.load(Ordering::Relaxed))
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
        assert_eq!(activity.contended(), Duration::ZERO);
    }

    #[test]
    fn contended_time_counts_shared_batches() {
        let activity = Activity::default();
        activity.time_batch(1, || std::thread::sleep(Duration::from_millis(1)));
        assert_eq!(activity.contended(), Duration::ZERO);
        activity.time_batch(3, || std::thread::sleep(Duration::from_millis(2)));
        assert!(activity.contended() >= Duration::from_millis(2));
        assert!(activity.busy() >= activity.contended() + Duration::from_millis(1));
    }
}
