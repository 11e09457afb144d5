//! The i-PRO camera protocol for hubkit, without I/O.
//!
//! [`Mac`] parses a camera's MAC address in any usual spelling into one canonical form.
//! [`DataFormat`] names the four kinds of data a camera can be set to send.
//! [`find_source_code`] finds the two-digit hex alarm source code that the HTTP alarm
//! notification carries, and [`alarm_source`] names it. [`decode_ai_vmd`] reads the AI
//! motion detection (AI-VMD) result that cameras embed in a JPEG comment segment.
//! [`parse`] turns one request from a camera into events with normalised fields and
//! the images to store.
//!
//! Receiving requests, storing raw captures and building records is left to the server.

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod aivmd;
mod alarm;
mod camera;
mod format;
mod mac;
mod notification;

pub use aivmd::{AiVmdArea, AiVmdError, AiVmdResult, AlarmType, BoundingBox, decode_ai_vmd};
pub use alarm::{SOURCE_PARAMETERS, alarm_source, find_source_code};
pub use camera::{
    Camera, CameraEndpoint, CameraError, CameraPath, CameraRegistry, IPRO_PREFIX, PathError,
    parse_camera_path,
};
pub use format::{DataFormat, UnknownFormat};
pub use mac::{Mac, MacError};
pub use notification::{
    Event, EventKind, Image, MAX_EVENTS, MAX_IMAGES, MAX_MULTIPART_DEPTH, MAX_PICK_DEPTH,
    MAX_XML_DEPTH, MAX_XML_NODES, Notification, Parsed, parse,
};
