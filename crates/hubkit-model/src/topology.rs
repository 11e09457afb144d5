use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A physical place, holding layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Area {
    /// Stable id, given in the configuration or derived from the name.
    pub id: Uuid,
    /// Name shown to users, unique among areas.
    pub name: String,
    /// Layers of the area.
    pub layers: Vec<Layer>,
}

/// A group of readings of one kind of device inside an area.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Stable id, given in the configuration or derived from the area and layer names.
    pub id: Uuid,
    /// Name shown to users, unique within its area.
    pub name: String,
    /// Kind of data the layer records.
    pub kind: LayerKind,
}

/// Kind of data a layer records, which decides the devices that can be bound to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerKind {
    /// Data received by webhooks, as JSON.
    WebhookJson,
    /// Messages received from MQTT topic entries, as JSON or text.
    Mqtt,
    /// Events from i-PRO cameras.
    Ipro,
}

impl LayerKind {
    /// Returns the record's `KindName` for data of this layer.
    pub fn kind_name(self) -> &'static str {
        match self {
            LayerKind::WebhookJson => "Webhook-JSON",
            LayerKind::Mqtt => "MQTT",
            LayerKind::Ipro => "i-PRO",
        }
    }

    /// Returns whether a device of `device`'s kind can be bound to a layer of this kind.
    pub fn accepts(self, device: &DeviceRef) -> bool {
        match (self, device) {
            (LayerKind::WebhookJson, DeviceRef::Webhook(_)) => true,
            (LayerKind::Mqtt, DeviceRef::MqttTopic(_)) => true,
            (LayerKind::Ipro, DeviceRef::Camera(_)) => true,
            (LayerKind::WebhookJson | LayerKind::Ipro, DeviceRef::MqttTopic(_))
            | (LayerKind::Mqtt | LayerKind::Ipro, DeviceRef::Webhook(_))
            | (LayerKind::WebhookJson | LayerKind::Mqtt, DeviceRef::Camera(_)) => false,
        }
    }

    /// Returns the name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::WebhookJson => "webhook-json",
            LayerKind::Mqtt => "mqtt",
            LayerKind::Ipro => "ipro",
        }
    }
}

/// A logical device that can be bound to layers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceRef {
    /// A webhook, by name.
    Webhook(String),
    /// An MQTT topic entry, by name.
    MqttTopic(String),
    /// An i-PRO camera, by name.
    Camera(String),
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRef::Webhook(name) => write!(f, "webhook {name:?}"),
            DeviceRef::MqttTopic(name) => write!(f, "topic entry {name:?}"),
            DeviceRef::Camera(name) => write!(f, "camera {name:?}"),
        }
    }
}

/// Attachment of a device to an area's layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The bound device.
    pub device: DeviceRef,
    /// Name of the area.
    pub area: String,
    /// Name of the layer within the area.
    pub layer: String,
    /// Whether data is collected; nothing is recorded through a disabled binding.
    pub enabled: bool,
}

/// A layer that a device's data is recorded to, with what a record needs of it.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundLayer {
    /// Id of the area.
    pub area_id: Uuid,
    /// Name of the area.
    pub area_name: String,
    /// Id of the layer.
    pub layer_id: Uuid,
    /// Name of the layer.
    pub layer_name: String,
    /// Kind of the layer.
    pub kind: LayerKind,
}

/// Error returned when areas, layers and bindings do not fit together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopologyError {
    /// Two areas have the same name.
    #[error("area name {0:?} is used twice; area names must be unique")]
    DuplicateArea(String),
    /// Two layers of one area have the same name.
    #[error(
        "layer name {layer:?} is used twice in area {area:?}; layer names must be unique within an area"
    )]
    DuplicateLayer {
        /// Area name.
        area: String,
        /// Layer name.
        layer: String,
    },
    /// Two areas or layers have the same id.
    #[error("id {0} is used twice; area and layer ids must be unique")]
    DuplicateId(Uuid),
    /// A binding names an area that does not exist.
    #[error("binding of {device} names area {area:?}, which is not defined")]
    UnknownArea {
        /// The bound device.
        device: DeviceRef,
        /// The missing area.
        area: String,
    },
    /// A binding names a layer that does not exist in its area.
    #[error("binding of {device} names layer {layer:?}, which area {area:?} does not have")]
    UnknownLayer {
        /// The bound device.
        device: DeviceRef,
        /// The area.
        area: String,
        /// The missing layer.
        layer: String,
    },
    /// A binding attaches a device to a layer of another kind.
    #[error("{device} cannot be bound to layer {layer:?}, whose kind is {kind}")]
    WrongKind {
        /// The bound device.
        device: DeviceRef,
        /// The layer.
        layer: String,
        /// The layer's kind.
        kind: &'static str,
    },
    /// The same device is bound twice to the same layer.
    #[error("{device} is bound twice to layer {layer:?} of area {area:?}")]
    DuplicateBinding {
        /// The bound device.
        device: DeviceRef,
        /// The area.
        area: String,
        /// The layer.
        layer: String,
    },
}

/// Areas, layers and bindings, checked to fit together, with a lookup from device to
/// the layers its data goes to.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    areas: Vec<Area>,
    bindings: Vec<Binding>,
    enabled_layers: HashMap<DeviceRef, Vec<BoundLayer>>,
}

impl Topology {
    /// Checks that the areas and bindings fit together and builds the lookup.
    ///
    /// # Errors
    ///
    /// Returns the first [`TopologyError`] found: duplicate names or ids, bindings to
    /// missing areas or layers, to layers of another kind, or the same binding twice.
    pub fn new(areas: Vec<Area>, bindings: Vec<Binding>) -> Result<Topology, TopologyError> {
        let mut area_names = HashMap::new();
        let mut ids = HashMap::new();
        for (index, area) in areas.iter().enumerate() {
            if area_names.insert(area.name.as_str(), index).is_some() {
                return Err(TopologyError::DuplicateArea(area.name.clone()));
            }
            if ids.insert(area.id, ()).is_some() {
                return Err(TopologyError::DuplicateId(area.id));
            }
            let mut layer_names = HashMap::new();
            for layer in &area.layers {
                if layer_names.insert(layer.name.as_str(), ()).is_some() {
                    return Err(TopologyError::DuplicateLayer {
                        area: area.name.clone(),
                        layer: layer.name.clone(),
                    });
                }
                if ids.insert(layer.id, ()).is_some() {
                    return Err(TopologyError::DuplicateId(layer.id));
                }
            }
        }

        let mut enabled_layers: HashMap<DeviceRef, Vec<BoundLayer>> = HashMap::new();
        let mut seen = HashMap::new();
        for binding in &bindings {
            let bound = Self::resolve(&areas, &area_names, binding)?;
            let key = (binding.device.clone(), bound.layer_id);
            if seen.insert(key, ()).is_some() {
                return Err(TopologyError::DuplicateBinding {
                    device: binding.device.clone(),
                    area: binding.area.clone(),
                    layer: binding.layer.clone(),
                });
            }
            if binding.enabled {
                enabled_layers
                    .entry(binding.device.clone())
                    .or_default()
                    .push(bound);
            }
        }

        Ok(Topology {
            areas,
            bindings,
            enabled_layers,
        })
    }

    fn resolve(
        areas: &[Area],
        area_names: &HashMap<&str, usize>,
        binding: &Binding,
    ) -> Result<BoundLayer, TopologyError> {
        let Some(&area_index) = area_names.get(binding.area.as_str()) else {
            return Err(TopologyError::UnknownArea {
                device: binding.device.clone(),
                area: binding.area.clone(),
            });
        };
        let area = &areas[area_index];
        let Some(layer) = area.layers.iter().find(|l| l.name == binding.layer) else {
            return Err(TopologyError::UnknownLayer {
                device: binding.device.clone(),
                area: binding.area.clone(),
                layer: binding.layer.clone(),
            });
        };
        if !layer.kind.accepts(&binding.device) {
            return Err(TopologyError::WrongKind {
                device: binding.device.clone(),
                layer: layer.name.clone(),
                kind: layer.kind.as_str(),
            });
        }
        Ok(BoundLayer {
            area_id: area.id,
            area_name: area.name.clone(),
            layer_id: layer.id,
            layer_name: layer.name.clone(),
            kind: layer.kind,
        })
    }

    /// Returns the areas.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// Returns all bindings, enabled or not.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Returns the layers that `device`'s data is recorded to: those of its enabled
    /// bindings, in configuration order. Empty when the device is unbound.
    pub fn layers_for(&self, device: &DeviceRef) -> &[BoundLayer] {
        self.enabled_layers
            .get(device)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive_uuid;

    fn area(name: &str, layers: &[&str]) -> Area {
        Area {
            id: derive_uuid("area", name),
            name: name.into(),
            layers: layers
                .iter()
                .map(|layer| Layer {
                    id: derive_uuid("layer", &format!("{name}/{layer}")),
                    name: (*layer).into(),
                    kind: LayerKind::WebhookJson,
                })
                .collect(),
        }
    }

    fn binding(webhook: &str, area: &str, layer: &str, enabled: bool) -> Binding {
        Binding {
            device: DeviceRef::Webhook(webhook.into()),
            area: area.into(),
            layer: layer.into(),
            enabled,
        }
    }

    #[test]
    fn enabled_bindings_resolve_to_layers() {
        let topology = Topology::new(
            vec![area("Office", &["Webhooks", "Other"])],
            vec![
                binding("a", "Office", "Webhooks", true),
                binding("a", "Office", "Other", true),
                binding("b", "Office", "Webhooks", false),
            ],
        )
        .expect("valid topology");
        let layers = topology.layers_for(&DeviceRef::Webhook("a".into()));
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].layer_name, "Webhooks");
        assert_eq!(layers[1].layer_name, "Other");
        assert!(
            topology
                .layers_for(&DeviceRef::Webhook("b".into()))
                .is_empty()
        );
        assert!(
            topology
                .layers_for(&DeviceRef::Webhook("c".into()))
                .is_empty()
        );
    }

    #[test]
    fn binding_to_unknown_area_fails() {
        let err = Topology::new(
            vec![area("Office", &["L"])],
            vec![binding("a", "Lab", "L", true)],
        )
        .expect_err("unknown area");
        assert!(matches!(err, TopologyError::UnknownArea { .. }));
    }

    #[test]
    fn binding_to_unknown_layer_fails() {
        let err = Topology::new(
            vec![area("Office", &["L"])],
            vec![binding("a", "Office", "M", true)],
        )
        .expect_err("unknown layer");
        assert!(matches!(err, TopologyError::UnknownLayer { .. }));
    }

    #[test]
    fn duplicate_names_fail() {
        let err = Topology::new(vec![area("A", &["L"]), area("A", &["M"])], vec![])
            .expect_err("duplicate area");
        assert_eq!(err, TopologyError::DuplicateArea("A".into()));
        let err = Topology::new(vec![area("A", &["L", "L"])], vec![]).expect_err("duplicate layer");
        assert!(matches!(err, TopologyError::DuplicateLayer { .. }));
    }

    #[test]
    fn duplicate_binding_fails() {
        let err = Topology::new(
            vec![area("A", &["L"])],
            vec![binding("a", "A", "L", true), binding("a", "A", "L", false)],
        )
        .expect_err("duplicate binding");
        assert!(matches!(err, TopologyError::DuplicateBinding { .. }));
    }
}
