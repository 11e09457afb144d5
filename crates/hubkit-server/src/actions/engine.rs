//! Trigger evaluation at ingest: which records fire which triggers, as pending runs that
//! commit with the records.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use hubkit_model::{Record, Topology, format_timestamp};
use hubkit_store::NewActionRun;
use hubkit_triggers::{Action, Decision, Gate, LayerName, Trigger, TriggerSource};
use serde_json::{Map, Value};
use tracing::debug;
use uuid::Uuid;

/// The triggers and actions of one configuration generation.
pub(crate) struct Engine {
    triggers: Vec<LiveTrigger>,
    /// Indexes into `triggers` of the enabled layer triggers, by key layer id.
    by_layer: HashMap<Uuid, Vec<usize>>,
    /// Layers whose latest record an extra-layer condition reads.
    watched: HashSet<Uuid>,
    actions: HashMap<String, Arc<Action>>,
}

/// A trigger with its layers resolved to ids and its firing state.
pub(crate) struct LiveTrigger {
    pub trigger: Trigger,
    extra_layers: Vec<Uuid>,
    gate: Arc<Mutex<Gate>>,
}

/// State that outlives a configuration generation.
#[derive(Default)]
pub(crate) struct Shared {
    /// Timestamp and `Data` of the latest record of each watched layer.
    latest: Mutex<HashMap<Uuid, (DateTime<Utc>, Value)>>,
    /// Runs of each trigger that are pending or running, for skip-if-running.
    active: Mutex<HashMap<String, usize>>,
}

impl Shared {
    /// Counts runs that left the queue, so skip-if-running lets their triggers fire again.
    pub(crate) fn release<'a>(&self, triggers: impl IntoIterator<Item = &'a str>) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        for trigger in triggers {
            if let Some(count) = active.get_mut(trigger) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    active.remove(trigger);
                }
            }
        }
    }

    /// Counts a queued run of `trigger`.
    pub(crate) fn hold(&self, trigger: &str) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        match active.get_mut(trigger) {
            Some(count) => *count += 1,
            None => {
                active.insert(trigger.to_owned(), 1);
            }
        }
    }

    fn is_active(&self, trigger: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(trigger)
            .is_some_and(|count| *count > 0)
    }

    /// Sets the latest record of a watched layer, unless a newer one is known.
    pub(crate) fn remember(&self, layer: Uuid, timestamp: DateTime<Utc>, data: &Value) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let newer = latest
            .get(&layer)
            .is_none_or(|(known, _)| *known <= timestamp);
        if newer {
            latest.insert(layer, (timestamp, data.clone()));
        }
    }
}

impl Engine {
    /// Resolves the triggers' layers against `topology` and keeps the firing state of
    /// triggers that `previous` had under the same name and gate settings.
    pub(crate) fn new(
        triggers: &[Trigger],
        actions: &[Action],
        topology: &Topology,
        previous: Option<&Engine>,
    ) -> Engine {
        let layer_ids: HashMap<(&str, &str), Uuid> = topology
            .areas()
            .iter()
            .flat_map(|area| {
                area.layers
                    .iter()
                    .map(move |layer| ((area.name.as_str(), layer.name.as_str()), layer.id))
            })
            .collect();
        let resolve = |name: &LayerName| {
            layer_ids
                .get(&(name.area.as_str(), name.layer.as_str()))
                .copied()
        };
        let mut engine = Engine {
            triggers: Vec::with_capacity(triggers.len()),
            by_layer: HashMap::new(),
            watched: HashSet::new(),
            actions: actions
                .iter()
                .map(|action| (action.name().to_owned(), Arc::new(action.clone())))
                .collect(),
        };
        for trigger in triggers {
            let gate = previous
                .and_then(|engine| engine.find(&trigger.name))
                .filter(|old| old.trigger.gate == trigger.gate)
                .map_or_else(
                    || Arc::new(Mutex::new(Gate::new(trigger.gate.clone()))),
                    |old| old.gate.clone(),
                );
            let mut extra_layers = Vec::new();
            if let TriggerSource::Layer(source) = &trigger.source {
                // The configuration checked that every named layer exists.
                let Some(key) = resolve(&source.key) else {
                    continue;
                };
                extra_layers = source.extra_layers.iter().filter_map(resolve).collect();
                if trigger.enabled {
                    engine
                        .by_layer
                        .entry(key)
                        .or_default()
                        .push(engine.triggers.len());
                    engine.watched.extend(extra_layers.iter().copied());
                }
            }
            engine.triggers.push(LiveTrigger {
                trigger: trigger.clone(),
                extra_layers,
                gate,
            });
        }
        engine
    }

    /// Returns the action named `name`.
    pub(crate) fn action(&self, name: &str) -> Option<Arc<Action>> {
        self.actions.get(name).cloned()
    }

    /// Returns the names of the configured actions, in no particular order.
    pub(crate) fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// Returns the trigger named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<&LiveTrigger> {
        self.triggers.iter().find(|live| live.trigger.name == name)
    }

    /// Returns every trigger in file order.
    pub(crate) fn triggers(&self) -> &[LiveTrigger] {
        &self.triggers
    }

    /// Returns the layers whose latest record extra-layer conditions read.
    pub(crate) fn watched_layers(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.watched.iter().copied()
    }

    /// Returns whether any enabled trigger watches records.
    pub(crate) fn is_idle(&self) -> bool {
        self.by_layer.is_empty() && self.watched.is_empty()
    }

    /// Evaluates the triggers of each record's layer, in record order, and returns a
    /// pending run for each trigger that fires. The caller stores the runs with the
    /// records, and calls [`Shared::release`] with their triggers if that write fails.
    pub(crate) fn fire(
        &self,
        shared: &Shared,
        records: &[Record],
        now: DateTime<Utc>,
    ) -> Vec<NewActionRun> {
        if self.is_idle() {
            return Vec::new();
        }
        let mut runs: Vec<NewActionRun> = Vec::new();
        let mut fired_at = None;
        let mut ids = RunIds::default();
        for (index, record) in records.iter().enumerate() {
            if let Some(triggers) = self.by_layer.get(&record.layer_id) {
                for &position in triggers {
                    let live = &self.triggers[position];
                    if self.offer(shared, live, record, now) {
                        shared.hold(&live.trigger.name);
                        let fired_at = fired_at.get_or_insert_with(|| format_timestamp(&now));
                        runs.push(NewActionRun {
                            id: ids.next(),
                            trigger: Some(live.trigger.name.clone()),
                            action: live.trigger.action.clone(),
                            record: Some(index),
                            input: trigger_input(&live.trigger, fired_at),
                            created_at: now,
                        });
                    }
                }
            }
            if self.watched.contains(&record.layer_id) {
                shared.remember(record.layer_id, record.timestamp, &record.data);
            }
        }
        runs
    }

    /// Evaluates one trigger for one record of its key layer and returns whether it fires.
    fn offer(
        &self,
        shared: &Shared,
        live: &LiveTrigger,
        record: &Record,
        now: DateTime<Utc>,
    ) -> bool {
        let TriggerSource::Layer(source) = &live.trigger.source else {
            return false;
        };
        if source
            .device
            .as_ref()
            .is_some_and(|device| *device != record.physical_device_name)
        {
            return false;
        }
        let matched = if live.extra_layers.is_empty() {
            source.conditions.evaluate(now, &record.data, &[])
        } else {
            let latest = shared.latest.lock().unwrap_or_else(PoisonError::into_inner);
            let values: Vec<Option<(DateTime<Utc>, &Value)>> = live
                .extra_layers
                .iter()
                .map(|layer| latest.get(layer).map(|(time, data)| (*time, data)))
                .collect();
            source.conditions.evaluate(now, &record.data, &values)
        };
        let running = live.trigger.gate.skip_if_running && shared.is_active(&live.trigger.name);
        let decision = live
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .offer(now, matched, running);
        if let Decision::Skip(reason) = decision
            && matched
        {
            debug!(trigger = %live.trigger.name, reason = reason.as_str(), "trigger matched but did not fire");
        }
        decision == Decision::Fire
    }

    /// Offers a timer trigger's firing time to its gate and returns the run to store when
    /// it fires.
    pub(crate) fn fire_timer(
        &self,
        shared: &Shared,
        name: &str,
        now: DateTime<Utc>,
    ) -> Option<NewActionRun> {
        let live = self.find(name)?;
        if !live.trigger.enabled {
            return None;
        }
        let running = live.trigger.gate.skip_if_running && shared.is_active(name);
        let decision = live
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .offer(now, true, running);
        if let Decision::Skip(reason) = decision {
            debug!(trigger = %name, reason = reason.as_str(), "timer trigger did not fire");
            return None;
        }
        shared.hold(name);
        Some(NewActionRun {
            id: Uuid::now_v7().simple().to_string(),
            trigger: Some(name.to_owned()),
            action: live.trigger.action.clone(),
            record: None,
            input: trigger_input(&live.trigger, &format_timestamp(&now)),
            created_at: now,
        })
    }
}

/// Ids of the runs of one evaluation: a UUIDv7, then the numbers after it. The store keeps
/// only the first id of the runs that one record fired when they follow each other.
#[derive(Default)]
struct RunIds {
    next: Option<u128>,
}

impl RunIds {
    /// Returns the next id as 32 lowercase hex digits.
    fn next(&mut self) -> String {
        let id = match self.next {
            Some(id) => id,
            // The low 62 bits of a UUIDv7 are random. An id this close to their end would
            // carry into the variant bits within a million runs, so it is drawn again.
            None => loop {
                let id = Uuid::now_v7().as_u128();
                if id & RANDOM_LOW_BITS < RANDOM_LOW_BITS - (1 << 20) {
                    break id;
                }
            },
        };
        self.next = Some(id + 1);
        format!("{id:032x}")
    }
}

/// The random low 62 bits of a UUIDv7.
const RANDOM_LOW_BITS: u128 = (1 << 62) - 1;

/// Builds the stored input of a run: `TriggerName`, `Properties` and `FiredAt`. For a run fired
/// by a record, the store puts the record's fields, as the records API shows them, in
/// front of these when it reads the run, so the record is not stored twice.
fn trigger_input(trigger: &Trigger, fired_at: &str) -> Value {
    let mut input = Map::with_capacity(3);
    input.insert("TriggerName".to_owned(), Value::from(trigger.name.clone()));
    input.insert(
        "Properties".to_owned(),
        Value::Object(trigger.properties.clone()),
    );
    input.insert("FiredAt".to_owned(), Value::from(fired_at));
    Value::Object(input)
}
