//! The `[[areas]]` and `[[bindings]]` sections, checked into a [`Topology`].

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use hubkit_model::{Area, Binding, DeviceRef, Layer, Topology, TopologyError, derive_uuid};
use toml::Spanned;
use uuid::Uuid;

use crate::document::Item;
use crate::error::Report;
use crate::raw::{RawArea, RawBinding, RawLayer};

/// Validates the areas, recording every problem in `report`, and returns the valid
/// ones, which bindings are checked against.
pub(crate) fn build_areas(raw: Vec<Item<RawArea>>, report: &mut Report<'_>) -> Vec<Area> {
    let mut areas = Vec::new();
    let mut area_names = HashMap::new();
    let mut ids = HashMap::new();
    for item in raw {
        let prefix = format!("areas[{}]", item.index);
        let area = item.value;
        let name = area.name.get_ref().clone();
        let name_ok = check_name(&area.name, "area", &format!("{prefix}.name"), report);
        if let Some(first) = area_names.get(&name) {
            let message =
                format!("area name {name:?} is already used by {first}; area names must be unique");
            report.error(area.name.span(), &format!("{prefix}.name"), message);
            continue;
        }
        area_names.insert(name.clone(), prefix.clone());

        let default_id = derive_uuid("area", &name);
        let id = parse_id(
            area.id.as_ref(),
            default_id,
            &format!("{prefix}.id"),
            report,
        );
        let id_span = area.id.as_ref().map_or(area.name.span(), Spanned::span);
        let id_ok = claim_id(&mut ids, id, id_span, &prefix, report);
        let layers = build_layers(&name, area.layers, &prefix, &mut ids, report);
        if name_ok && id_ok {
            areas.push(Area { id, name, layers });
        }
    }
    areas
}

fn build_layers(
    area_name: &str,
    raw: Vec<Spanned<RawLayer>>,
    area_prefix: &str,
    ids: &mut HashMap<Uuid, String>,
    report: &mut Report<'_>,
) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut layer_names = HashMap::new();
    for (index, layer) in raw.into_iter().enumerate() {
        let prefix = format!("{area_prefix}.layers[{index}]");
        let layer = layer.into_inner();
        let name = layer.name.get_ref().clone();
        let name_ok = check_name(&layer.name, "layer", &format!("{prefix}.name"), report);
        if let Some(first) = layer_names.get(&name) {
            let message = format!(
                "layer name {name:?} is already used by {first}; layer names must be unique within an area"
            );
            report.error(layer.name.span(), &format!("{prefix}.name"), message);
            continue;
        }
        layer_names.insert(name.clone(), prefix.clone());

        let default_id = derive_uuid("layer", &format!("{area_name}/{name}"));
        let id = parse_id(
            layer.id.as_ref(),
            default_id,
            &format!("{prefix}.id"),
            report,
        );
        let id_span = layer.id.as_ref().map_or(layer.name.span(), Spanned::span);
        let id_ok = claim_id(ids, id, id_span, &prefix, report);
        if name_ok && id_ok {
            layers.push(Layer {
                id,
                name,
                kind: layer.kind,
            });
        }
    }
    layers
}

/// Checks that a name is not empty and has no control characters.
fn check_name(name: &Spanned<String>, kind: &str, field: &str, report: &mut Report<'_>) -> bool {
    let text = name.get_ref();
    let problem = if text.trim().is_empty() {
        format!("{kind} name is empty")
    } else if text.chars().any(char::is_control) {
        format!("{kind} name {text:?} contains a control character")
    } else {
        return true;
    };
    report.error(name.span(), field, problem);
    false
}

fn parse_id(
    raw: Option<&Spanned<String>>,
    default: Uuid,
    field: &str,
    report: &mut Report<'_>,
) -> Uuid {
    let Some(raw) = raw else {
        return default;
    };
    match Uuid::parse_str(raw.get_ref()) {
        Ok(id) => id,
        Err(err) => {
            let message = format!("id {:?} is not a valid UUID: {err}", raw.get_ref());
            report.error(raw.span(), field, message);
            default
        }
    }
}

/// Records `id` as used by `owner` and returns true, or records an error at `span`
/// and returns false if another area or layer has it.
fn claim_id(
    ids: &mut HashMap<Uuid, String>,
    id: Uuid,
    span: Range<usize>,
    owner: &str,
    report: &mut Report<'_>,
) -> bool {
    if let Some(first) = ids.get(&id) {
        let message =
            format!("id {id} is already used by {first}; area and layer ids must be unique");
        report.error(span, &format!("{owner}.id"), message);
        return false;
    }
    ids.insert(id, owner.to_owned());
    true
}

/// A binding that passed its own checks, with the spans its errors point at.
struct CheckedBinding {
    index: usize,
    span: Range<usize>,
    area_span: Range<usize>,
    layer_span: Range<usize>,
    binding: Binding,
}

/// Names of the devices defined in the file, for bindings to refer to. A set is `None`
/// when some element of its section could not be read, so references to it are not
/// checked and a typo in a webhook does not also show up in each binding that names it.
pub(crate) struct KnownDevices<'a> {
    pub webhooks: Option<&'a HashSet<String>>,
    pub topics: Option<&'a HashSet<String>>,
    pub cameras: Option<&'a HashSet<String>>,
}

/// Validates the bindings against the areas and device names and builds the topology.
///
/// `areas_complete` is false when an area could not be read; bindings are then not
/// checked against the areas.
pub(crate) fn build_topology(
    raw: Vec<Item<RawBinding>>,
    areas: Vec<Area>,
    areas_complete: bool,
    known: &KnownDevices<'_>,
    report: &mut Report<'_>,
) -> Topology {
    let mut checked: Vec<CheckedBinding> = Vec::new();
    let mut seen = HashMap::new();
    for item in raw {
        let prefix = format!("bindings[{}]", item.index);
        let raw = item.value;
        let Some(device) = binding_device(&raw, item.span.clone(), &prefix, known, report) else {
            continue;
        };
        let candidate = CheckedBinding {
            index: item.index,
            span: item.span,
            area_span: raw.area.span(),
            layer_span: raw.layer.span(),
            binding: Binding {
                device: device.clone(),
                area: raw.area.get_ref().clone(),
                layer: raw.layer.get_ref().clone(),
                enabled: raw.enabled.unwrap_or(true),
            },
        };
        if areas_complete {
            let single = Topology::new(areas.clone(), vec![candidate.binding.clone()]);
            if let Err(err) = single {
                report_topology_error(&candidate, &err, report);
                continue;
            }
        }
        let key = (
            device.clone(),
            candidate.binding.area.clone(),
            candidate.binding.layer.clone(),
        );
        if let Some(first) = seen.get(&key) {
            let message = format!(
                "{device} is already bound to layer {:?} of area {:?} by {first}",
                key.2, key.1
            );
            report.error(candidate.span.clone(), &prefix, message);
            continue;
        }
        seen.insert(key, prefix);
        checked.push(candidate);
    }

    let bindings = checked.iter().map(|c| c.binding.clone()).collect();
    match Topology::new(areas, bindings) {
        Ok(topology) => topology,
        Err(err) => {
            // The checks above catch every error that Topology::new returns, so this
            // happens only when the file has errors already, or if the model gains a
            // rule that this crate does not check yet.
            if report.error_count() == 0 {
                match checked.iter().find(|c| blames(&err, &c.binding)) {
                    Some(candidate) => report_topology_error(candidate, &err, report),
                    None => report.error(0..0, "areas", err.to_string()),
                }
            }
            Topology::default()
        }
    }
}

/// Returns the device a binding names, or records why it names none or two.
fn binding_device(
    raw: &RawBinding,
    span: Range<usize>,
    prefix: &str,
    known: &KnownDevices<'_>,
    report: &mut Report<'_>,
) -> Option<DeviceRef> {
    let named: Vec<(&str, &Spanned<String>)> = [
        ("webhook", &raw.webhook),
        ("topic", &raw.topic),
        ("camera", &raw.camera),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|value| (key, value)))
    .collect();
    let (key, value) = match named.as_slice() {
        [one] => *one,
        [] => {
            let message = "binding names no device; set webhook = \"<name>\", \
                           topic = \"<name>\" or camera = \"<name>\""
                .to_owned();
            report.error(span, prefix, message);
            return None;
        }
        [_, (key, value), ..] => {
            let message = format!(
                "binding names more than one device ({}); use one binding per device",
                named
                    .iter()
                    .map(|(key, _)| *key)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            report.error(value.span(), &format!("{prefix}.{key}"), message);
            return None;
        }
    };
    let name = value.get_ref().clone();
    let (names, device, kind, section) = match key {
        "webhook" => (
            known.webhooks,
            DeviceRef::Webhook(name.clone()),
            "webhook",
            "[[webhooks]]",
        ),
        "topic" => (
            known.topics,
            DeviceRef::MqttTopic(name.clone()),
            "topic entry",
            "[[topics]]",
        ),
        _ => (
            known.cameras,
            DeviceRef::Camera(name.clone()),
            "camera",
            "[[cameras]]",
        ),
    };
    if names.is_some_and(|names| !names.contains(&name)) {
        let message = format!("binding names {kind} {name:?}, which is not defined in {section}");
        report.error(value.span(), &format!("{prefix}.{key}"), message);
        return None;
    }
    Some(device)
}

/// Returns whether `err` is about `binding`.
fn blames(err: &TopologyError, binding: &Binding) -> bool {
    match err {
        TopologyError::UnknownArea { device, area } => {
            *device == binding.device && *area == binding.area
        }
        TopologyError::UnknownLayer { device, layer, .. }
        | TopologyError::WrongKind { device, layer, .. }
        | TopologyError::DuplicateBinding { device, layer, .. } => {
            *device == binding.device && *layer == binding.layer
        }
        TopologyError::DuplicateArea(_)
        | TopologyError::DuplicateLayer { .. }
        | TopologyError::DuplicateId(_) => false,
    }
}

fn report_topology_error(candidate: &CheckedBinding, err: &TopologyError, report: &mut Report<'_>) {
    let prefix = format!("bindings[{}]", candidate.index);
    let (span, field) = match err {
        TopologyError::UnknownArea { .. } => {
            (candidate.area_span.clone(), format!("{prefix}.area"))
        }
        TopologyError::UnknownLayer { .. } | TopologyError::WrongKind { .. } => {
            (candidate.layer_span.clone(), format!("{prefix}.layer"))
        }
        _ => (candidate.span.clone(), prefix),
    };
    report.error(span, &field, err.to_string());
}
