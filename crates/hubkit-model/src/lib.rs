//! The data model of hubkit: areas, layers, bindings of devices to layers, and the
//! [`Record`] that every transport produces.
//!
//! An [`Area`] is a place. It contains [`Layer`]s, and each layer groups the data of one
//! kind of device. A device (a webhook or an MQTT topic entry) records nothing until a [`Binding`]
//! attaches it to a layer and the binding is enabled. The [`Topology`] answers which
//! layers a device's data goes to.
//!
//! Records use the field names of Gravio's sensor records (`DataId`, `AreaId`,
//! `KindName`, `Data`, `Timestamp`, ...) so consumers written for Gravio can read them.
//!
//! This crate does no I/O.

#![deny(missing_docs)]

mod ids;
mod record;
mod topology;

pub use ids::{DataId, InvalidDataId, ShortId, derive_uuid};
pub use record::{HttpTransport, MqttTransport, Record, Transport, format_timestamp};
pub use topology::{
    Area, Binding, BoundLayer, DeviceRef, Layer, LayerKind, Topology, TopologyError,
};
