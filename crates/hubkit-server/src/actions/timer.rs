//! Timer triggers: store a run at each time of a cron schedule.
//!
//! A firing time that passed while hubkitd was stopped is not made up after the start,
//! and several times that passed during one long pause (a suspended machine) fire once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubkit_triggers::{CronSchedule, TriggerSource};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::Fired;
use crate::state::AppState;

/// Maximum sleep between two readings of the clock. The wall clock can jump (NTP, a
/// suspended machine) while a sleep runs on the monotonic clock, so a long sleep is cut
/// into pieces of this length.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The wall clock that cron times are compared with.
pub(crate) trait Clock: Send + Sync {
    /// Returns the current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The hub's side of the timer loop, a trait so that tests can drive the loop without a hub.
pub(crate) trait TimerHost: Send + Sync {
    /// Returns the enabled timer triggers and their schedules.
    fn schedules(&self) -> Vec<(String, CronSchedule)>;

    /// Fires trigger `name` for the time `at`.
    fn fire(&self, name: &str, at: DateTime<Utc>) -> impl Future<Output = ()> + Send;

    /// Returns when the configuration changed.
    fn reloaded(&self) -> impl Future<Output = ()> + Send;
}

/// Fires timer triggers until `shutdown` turns true.
pub(crate) async fn drive<H: TimerHost, C: Clock>(
    host: &H,
    clock: &C,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut since = clock.now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let schedules = host.schedules();
        let next = schedules
            .iter()
            .filter_map(|(_, schedule)| schedule.next_after(since))
            .min();
        let wait = match next {
            Some(next) => (next - clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = host.reloaded() => {}
            _ = shutdown.changed() => return,
        }
        let now = clock.now();
        // A trigger that a reload added or changed starts from now: only triggers that
        // were known, unchanged, before the wait fire for a time that passed during it.
        for (name, schedule) in host.schedules() {
            let known = schedules.iter().any(|(old, old_schedule)| {
                *old == name
                    && old_schedule.as_str() == schedule.as_str()
                    && old_schedule.offset() == schedule.offset()
            });
            let Some(due) = schedule.next_after(since) else {
                continue;
            };
            if known && due <= now {
                host.fire(&name, due).await;
            }
        }
        since = now;
    }
}

/// The hub as the host of its timer triggers.
pub(crate) struct HubTimers {
    pub state: Arc<AppState>,
}

impl TimerHost for HubTimers {
    fn schedules(&self) -> Vec<(String, CronSchedule)> {
        let runtime = self.state.runtime.load();
        runtime
            .engine
            .triggers()
            .iter()
            .filter(|live| live.trigger.enabled)
            .filter_map(|live| match &live.trigger.source {
                TriggerSource::Timer(schedule) => {
                    Some((live.trigger.name.clone(), schedule.clone()))
                }
                TriggerSource::Layer(_) => None,
            })
            .collect()
    }

    async fn fire(&self, name: &str, at: DateTime<Utc>) {
        let state = &self.state;
        let run = state
            .runtime
            .load()
            .engine
            .fire_timer(&state.actions.shared, name, at);
        let Some(run) = run else {
            return;
        };
        let fired = Fired::of(std::slice::from_ref(&run));
        match state.store.insert_action_run(run).await {
            Ok(()) => {
                debug!(trigger = %name, "timer trigger fired");
                fired.stored(state);
            }
            Err(err) => {
                warn!(trigger = %name, error = %crate::error_chain(&err), "failed to store the run of a timer trigger");
                fired.not_stored(state);
            }
        }
    }

    async fn reloaded(&self) {
        self.state.actions.reloaded.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{FixedOffset, TimeZone};
    use tokio::sync::Notify;

    use super::*;

    /// A wall clock that follows Tokio's clock, which tests pause and advance.
    struct TokioClock {
        base: DateTime<Utc>,
        start: tokio::time::Instant,
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            let elapsed = self.start.elapsed();
            self.base + chrono::TimeDelta::from_std(elapsed).expect("elapsed time fits")
        }
    }

    struct FakeHost {
        schedules: Mutex<Vec<(String, CronSchedule)>>,
        fired: Mutex<Vec<(String, DateTime<Utc>)>>,
        reload: Notify,
    }

    impl TimerHost for FakeHost {
        fn schedules(&self) -> Vec<(String, CronSchedule)> {
            self.schedules.lock().unwrap().clone()
        }

        async fn fire(&self, name: &str, at: DateTime<Utc>) {
            self.fired.lock().unwrap().push((name.to_owned(), at));
        }

        async fn reloaded(&self) {
            self.reload.notified().await;
        }
    }

    fn schedule(expression: &str) -> CronSchedule {
        CronSchedule::parse(expression, FixedOffset::east_opt(0).unwrap()).unwrap()
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, m, s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn cron_fires_each_time_paused() {
        let host = Arc::new(FakeHost {
            schedules: Mutex::new(vec![
                ("half-minute".to_owned(), schedule("*/30 * * * * *")),
                ("ten-past".to_owned(), schedule("0 10 * * * *")),
            ]),
            fired: Mutex::new(Vec::new()),
            reload: Notify::new(),
        });
        let clock = TokioClock {
            base: at(9, 8, 45),
            start: tokio::time::Instant::now(),
        };
        let (stop, stopped) = watch::channel(false);
        let driver = {
            let host = host.clone();
            tokio::spawn(async move { drive(&*host, &clock, stopped).await })
        };

        // 09:08:45 + 140 s = 09:11:05.
        tokio::time::sleep(Duration::from_secs(140)).await;
        let fired = host.fired.lock().unwrap().clone();
        assert_eq!(
            fired,
            vec![
                ("half-minute".to_owned(), at(9, 9, 0)),
                ("half-minute".to_owned(), at(9, 9, 30)),
                ("half-minute".to_owned(), at(9, 10, 0)),
                ("ten-past".to_owned(), at(9, 10, 0)),
                ("half-minute".to_owned(), at(9, 10, 30)),
                ("half-minute".to_owned(), at(9, 11, 0)),
            ]
        );

        // A reload that removes the half-minute trigger stops it at once.
        host.schedules.lock().unwrap().remove(0);
        host.reload.notify_one();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let later: Vec<_> = host.fired.lock().unwrap()[6..].to_vec();
        assert_eq!(later, vec![("ten-past".to_owned(), at(10, 10, 0))]);

        stop.send(true).unwrap();
        driver.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn reload_added_timer_waits_next_time() {
        let host = Arc::new(FakeHost {
            schedules: Mutex::new(Vec::new()),
            fired: Mutex::new(Vec::new()),
            reload: Notify::new(),
        });
        let clock = TokioClock {
            base: at(9, 0, 0),
            start: tokio::time::Instant::now(),
        };
        let (stop, stopped) = watch::channel(false);
        let driver = {
            let host = host.clone();
            tokio::spawn(async move { drive(&*host, &clock, stopped).await })
        };

        // At 09:00:50 a reload adds a trigger for second 10 of each minute. 09:00:10 has
        // passed since the loop last looked, and must not fire.
        tokio::time::sleep(Duration::from_secs(50)).await;
        host.schedules
            .lock()
            .unwrap()
            .push(("ten".to_owned(), schedule("10 * * * * *")));
        host.reload.notify_one();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(
            host.fired.lock().unwrap().clone(),
            vec![("ten".to_owned(), at(9, 1, 10))]
        );

        stop.send(true).unwrap();
        driver.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn no_timer_triggers_means_no_fires() {
        let host = FakeHost {
            schedules: Mutex::new(Vec::new()),
            fired: Mutex::new(Vec::new()),
            reload: Notify::new(),
        };
        let clock = TokioClock {
            base: at(0, 0, 0),
            start: tokio::time::Instant::now(),
        };
        let (stop, stopped) = watch::channel(false);
        let run = drive(&host, &clock, stopped);
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            stop.send(true).unwrap();
        };
        tokio::join!(run, stopper);
        assert!(host.fired.lock().unwrap().is_empty());
    }
}
