//! The `[[cameras]]` and `[ipro]` sections, checked into [`Camera`]s and [`IproConfig`].

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use hubkit_endpoints::Auth;
use hubkit_ipro::{Camera, DataFormat, Mac};
use hubkit_model::{DeviceRef, Topology};
use toml::Spanned;

use crate::document::Item;
use crate::error::Report;
use crate::mqtt::check_name;
use crate::raw::{RawCamera, RawIpro};
use crate::server::{Limits, check_range};

/// Largest camera request body accepted when neither the camera nor `[ipro]` sets one:
/// 8 MiB, room for an ONVIF event with several base64 images. hubkitd keeps a body and
/// its decoded form in memory while it stores it, so a larger default would let a few
/// concurrent requests take hundreds of MiB on a small machine.
pub const DEFAULT_CAMERA_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// Settings shared by every camera: the `[ipro]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IproConfig {
    /// Whether every request from a camera is also written byte for byte to
    /// `capture_dir`.
    pub capture: bool,
    /// Folder of the captured requests; `None` for `captures` under the data folder. A
    /// relative path resolves against the working directory of the process.
    pub capture_dir: Option<PathBuf>,
    /// Largest request body accepted from a camera without a limit of its own.
    pub max_body_bytes: u64,
}

impl Default for IproConfig {
    fn default() -> Self {
        IproConfig {
            capture: false,
            capture_dir: None,
            max_body_bytes: DEFAULT_CAMERA_BODY_BYTES,
        }
    }
}

/// A camera that passed its own checks, with the span its warnings point at.
pub(crate) struct CheckedCamera {
    index: usize,
    name_span: Range<usize>,
    camera: Camera,
}

/// Returns the names of every camera in the file, valid or not.
pub(crate) fn camera_names(raw: &[Item<RawCamera>]) -> HashSet<String> {
    raw.iter()
        .map(|item| item.value.name.get_ref().clone())
        .collect()
}

/// Validates the `[ipro]` table.
pub(crate) fn build_ipro(raw: Option<Spanned<RawIpro>>, report: &mut Report<'_>) -> IproConfig {
    let Some(raw) = raw else {
        return IproConfig::default();
    };
    let raw = raw.into_inner();
    let capture_dir = raw.capture_dir.and_then(|dir| {
        if dir.get_ref().trim().is_empty() {
            let message = "capture_dir is empty; name a folder, or remove the key to use \
                           `captures` under the data folder"
                .to_owned();
            report.error(dir.span(), "ipro.capture_dir", message);
            None
        } else {
            Some(PathBuf::from(dir.into_inner()))
        }
    });
    let max_body_bytes = check_range(
        &raw.max_body_bytes,
        &Limits::BODY_BYTES_RANGE,
        "ipro.max_body_bytes",
        report,
    )
    .unwrap_or(DEFAULT_CAMERA_BODY_BYTES);
    IproConfig {
        capture: raw.capture.unwrap_or(false),
        capture_dir,
        max_body_bytes,
    }
}

/// Validates the cameras, recording every problem in `report`.
pub(crate) fn build_cameras(
    raw: Vec<Item<RawCamera>>,
    report: &mut Report<'_>,
) -> Vec<CheckedCamera> {
    let mut names = HashMap::new();
    let mut macs: HashMap<Mac, String> = HashMap::new();
    let mut cameras = Vec::new();
    for item in raw {
        let prefix = format!("cameras[{}]", item.index);
        let raw = item.value;
        let errors_before = report.error_count();
        check_name(&raw.name, "camera", &prefix, &mut names, report);
        let name = raw.name.get_ref().clone();

        let mac = match Mac::parse(raw.mac.get_ref()) {
            Ok(mac) => {
                if let Some(first) = macs.get(&mac) {
                    let message = format!(
                        "MAC address {mac} is already used by {first}; each camera needs its own"
                    );
                    report.error(raw.mac.span(), &format!("{prefix}.mac"), message);
                } else {
                    macs.insert(mac, prefix.clone());
                }
                Some(mac)
            }
            Err(err) => {
                report.error(raw.mac.span(), &format!("{prefix}.mac"), err.to_string());
                None
            }
        };
        let format = match DataFormat::parse(raw.format.get_ref()) {
            Ok(format) => Some(format),
            Err(err) => {
                report.error(
                    raw.format.span(),
                    &format!("{prefix}.format"),
                    err.to_string(),
                );
                None
            }
        };
        let auth = match raw.auth {
            Some(auth) => crate::webhooks::build_auth(
                auth,
                &format!("camera {name:?}"),
                &format!("{prefix}.auth"),
                report,
            ),
            None => Some(Auth::None),
        };
        let max_body_bytes = check_range(
            &raw.max_body_bytes,
            &Limits::BODY_BYTES_RANGE,
            &format!("{prefix}.max_body_bytes"),
            report,
        );
        let max_age = check_range(
            &raw.max_age_hours,
            &Limits::MAX_AGE_HOURS_RANGE,
            &format!("{prefix}.max_age_hours"),
            report,
        )
        .map(|hours| Duration::from_secs(hours * 3600));
        let max_total_bytes = check_range(
            &raw.max_total_bytes,
            &Limits::TOTAL_BYTES_RANGE,
            &format!("{prefix}.max_total_bytes"),
            report,
        );

        let (Some(mac), Some(format), Some(auth)) = (mac, format, auth) else {
            continue;
        };
        if report.error_count() > errors_before {
            continue;
        }
        let mut camera = Camera::new(name, mac, format);
        camera.auth = auth;
        camera.enabled = raw.enabled.unwrap_or(true);
        camera.max_body_bytes = max_body_bytes;
        camera.max_age = max_age;
        camera.max_total_bytes = max_total_bytes;
        cameras.push(CheckedCamera {
            index: item.index,
            name_span: raw.name.span(),
            camera,
        });
    }
    cameras
}

/// Warns about enabled cameras that no enabled binding records, and returns the cameras.
pub(crate) fn finish_cameras(
    cameras: Vec<CheckedCamera>,
    topology: &Topology,
    report: &mut Report<'_>,
) -> Vec<Camera> {
    for checked in &cameras {
        let camera = &checked.camera;
        let device = DeviceRef::Camera(camera.name.clone());
        if camera.enabled && topology.layers_for(&device).is_empty() {
            let message = format!(
                "camera {:?} is enabled but has no enabled binding; its requests get 404 \
                 until it is bound",
                camera.name
            );
            report.warning(
                checked.name_span.clone(),
                &format!("cameras[{}]", checked.index),
                message,
            );
        }
    }
    cameras.into_iter().map(|checked| checked.camera).collect()
}
