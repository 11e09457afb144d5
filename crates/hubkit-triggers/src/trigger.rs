//! A configured trigger: what it watches, when it may fire and which action it runs.

use serde_json::{Map, Value};

use crate::{ConditionSet, CronSchedule, GateConfig};

/// A layer named by its area and layer names, as in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayerName {
    /// The area's name.
    pub area: String,
    /// The layer's name inside the area.
    pub layer: String,
}

/// The source of a trigger's firings.
#[derive(Debug, Clone)]
pub enum TriggerSource {
    /// Each record stored in the key layer, checked against conditions.
    Layer(LayerSource),
    /// The times of a cron schedule.
    Timer(CronSchedule),
}

/// The key layer of a device trigger and its conditions.
#[derive(Debug, Clone)]
pub struct LayerSource {
    /// The layer whose records are checked.
    pub key: LayerName,
    /// Only records of the device with this name (the record's `PhysicalDeviceName`: a
    /// webhook, topic entry or camera name); `None` for every device of the layer.
    pub device: Option<String>,
    /// The key layer's condition and the extra-layer conditions.
    pub conditions: ConditionSet,
    /// The layer of each extra-layer condition, in the order of
    /// [`ConditionSet::extras`].
    pub extra_layers: Vec<LayerName>,
}

/// A checked trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// The trigger's name, unique among the triggers.
    pub name: String,
    /// Whether the trigger is evaluated at all.
    pub enabled: bool,
    /// The source of its firings.
    pub source: TriggerSource,
    /// Interval, threshold mode, active hours and skip-if-running. Timer triggers use
    /// only the active hours and skip-if-running.
    pub gate: GateConfig,
    /// The name of the action to run.
    pub action: String,
    /// Properties passed to the action in its input as `Properties`.
    pub properties: Map<String, Value>,
}
