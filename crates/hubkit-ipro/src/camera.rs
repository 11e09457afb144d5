//! Cameras as the configuration defines them, and the paths of their URLs.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hubkit_endpoints::{Auth, AuthCheck, Credentials, EndpointError};
use thiserror::Error;

use crate::{DataFormat, Mac};

/// Path prefix of every camera URL.
pub const IPRO_PREFIX: &str = "/ipro/";

/// A camera that sends data to the hub.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    /// Name shown to users and used as the records' `PhysicalDeviceName`.
    pub name: String,
    /// MAC address, the camera's identity in its URL and the records' `PhysicalDeviceId`.
    pub mac: Mac,
    /// The kind of data the camera is set to send, which names its records' `KindName`.
    pub format: DataFormat,
    /// Credentials the camera sends with each request.
    pub auth: Auth,
    /// Whether requests are accepted; a disabled camera gets 404.
    pub enabled: bool,
    /// Largest request body accepted, in bytes; `None` for the server's camera default.
    pub max_body_bytes: Option<u64>,
    /// Files (raw requests and images) older than this are removed; `None` keeps them.
    pub max_age: Option<Duration>,
    /// The oldest files are removed while the camera's files take more bytes than this;
    /// `None` sets no limit.
    pub max_total_bytes: Option<u64>,
}

impl Camera {
    /// Returns a camera with the given identity, no authentication, enabled, and no
    /// limits of its own.
    pub fn new(name: impl Into<String>, mac: Mac, format: DataFormat) -> Camera {
        Camera {
            name: name.into(),
            mac,
            format,
            auth: Auth::None,
            enabled: true,
            max_body_bytes: None,
            max_age: None,
            max_total_bytes: None,
        }
    }

    /// Returns the path to enter in the camera, such as `/ipro/aa-bb-cc-dd-ee-ff/general`.
    pub fn url_path(&self) -> String {
        format!("{IPRO_PREFIX}{}/{}", self.mac.url_form(), self.format)
    }

    /// Returns the owner name that the camera's stored files are grouped by, such as
    /// `ipro-aabbccddeeff`.
    pub fn file_owner(&self) -> String {
        let hex: String = self
            .mac
            .bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("ipro-{hex}")
    }
}

/// A camera with its credential check.
pub struct CameraEndpoint {
    camera: Camera,
    credentials: Credentials,
}

impl CameraEndpoint {
    /// Returns the camera's configuration.
    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    /// Checks a request's raw `Authorization` header value against the camera's
    /// credentials, as [`Credentials::authorize`] does.
    pub fn authorize(&self, authorization: Option<&[u8]>) -> AuthCheck {
        self.credentials.authorize(authorization)
    }
}

impl fmt::Debug for CameraEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraEndpoint")
            .field("camera", &self.camera)
            .finish_non_exhaustive()
    }
}

/// Cameras that do not fit together, or whose credentials cannot be set up.
#[derive(Debug, Error)]
pub enum CameraError {
    /// Two cameras have the same name.
    #[error("camera name {0:?} is used twice; camera names must be unique")]
    DuplicateName(String),
    /// Two cameras have the same MAC address.
    #[error(
        "MAC address {mac} is used by cameras {first:?} and {second:?}; each camera needs its own"
    )]
    DuplicateMac {
        /// The shared address.
        mac: Mac,
        /// The first camera with it.
        first: String,
        /// The second camera with it.
        second: String,
    },
    /// The credentials of a camera cannot be set up.
    #[error("camera {name:?}: {source}")]
    Credentials {
        /// The camera's name.
        name: String,
        /// What failed.
        source: EndpointError,
    },
}

/// The configured cameras, looked up by MAC address.
#[derive(Debug, Default)]
pub struct CameraRegistry {
    cameras: Vec<Arc<CameraEndpoint>>,
    by_mac: HashMap<Mac, usize>,
}

impl CameraRegistry {
    /// Checks that names and MAC addresses are unique and sets up each camera's
    /// credentials.
    ///
    /// # Errors
    ///
    /// [`CameraError`] for a repeated name or address, or credentials that cannot be set
    /// up.
    pub fn new(cameras: Vec<Camera>) -> Result<CameraRegistry, CameraError> {
        let mut names: HashMap<String, ()> = HashMap::new();
        let mut registry = CameraRegistry::default();
        for camera in cameras {
            if names.insert(camera.name.clone(), ()).is_some() {
                return Err(CameraError::DuplicateName(camera.name));
            }
            if let Some(&index) = registry.by_mac.get(&camera.mac) {
                return Err(CameraError::DuplicateMac {
                    mac: camera.mac,
                    first: registry.cameras[index].camera.name.clone(),
                    second: camera.name,
                });
            }
            let credentials = Credentials::new(&camera.name, &camera.auth).map_err(|source| {
                CameraError::Credentials {
                    name: camera.name.clone(),
                    source,
                }
            })?;
            registry.by_mac.insert(camera.mac, registry.cameras.len());
            registry.cameras.push(Arc::new(CameraEndpoint {
                camera,
                credentials,
            }));
        }
        Ok(registry)
    }

    /// Returns the camera with MAC address `mac`.
    pub fn lookup(&self, mac: &Mac) -> Option<&Arc<CameraEndpoint>> {
        self.by_mac.get(mac).map(|&index| &self.cameras[index])
    }

    /// Returns the cameras in configuration order.
    pub fn iter(&self) -> std::slice::Iter<'_, Arc<CameraEndpoint>> {
        self.cameras.iter()
    }

    /// Returns the number of cameras.
    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    /// Returns whether there are no cameras.
    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }
}

/// The parts of a camera URL's path after [`IPRO_PREFIX`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraPath<'a> {
    /// The camera's MAC address.
    pub mac: Mac,
    /// The data format segment, or `None` when the path ends after the MAC address.
    pub format: Option<DataFormat>,
    /// Everything after the format segment, without its leading `/`: notification data
    /// that the camera appended as path segments.
    pub rest: &'a str,
}

/// A camera URL path that cannot be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The first segment is not a MAC address.
    #[error(
        "the path segment after /ipro/ must be the camera's MAC address, such as \
         aa-bb-cc-dd-ee-ff, but {segment:?} is not one"
    )]
    InvalidMac {
        /// The segment, cut to 40 characters.
        segment: String,
    },
    /// The second segment is not a data format.
    #[error(
        "the path segment after the MAC address must be a data format (ai-crowd, \
         face-recognition, ai-motion or general), but {segment:?} is not one"
    )]
    InvalidFormat {
        /// The segment, cut to 40 characters.
        segment: String,
    },
}

/// Splits the path after [`IPRO_PREFIX`] into MAC address, data format and the rest.
/// The MAC address segment may be percent-encoded (`aa%3Abb%3A...`).
///
/// # Errors
///
/// [`PathError`] when the first segment is not a MAC address or the second is not a data
/// format.
pub fn parse_camera_path(path: &str) -> Result<CameraPath<'_>, PathError> {
    let (mac_segment, after) = match path.split_once('/') {
        Some((mac, after)) => (mac, Some(after)),
        None => (path, None),
    };
    let decoded = mac_segment.replace("%3A", ":").replace("%3a", ":");
    let mac = Mac::parse(&decoded).map_err(|_| PathError::InvalidMac {
        segment: cut(mac_segment),
    })?;
    let Some(after) = after.filter(|after| !after.is_empty()) else {
        return Ok(CameraPath {
            mac,
            format: None,
            rest: "",
        });
    };
    let (format_segment, rest) = after.split_once('/').unwrap_or((after, ""));
    let format = DataFormat::parse(format_segment).map_err(|_| PathError::InvalidFormat {
        segment: cut(format_segment),
    })?;
    Ok(CameraPath {
        mac,
        format: Some(format),
        rest,
    })
}

fn cut(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(text: &str) -> Mac {
        Mac::parse(text).unwrap()
    }

    #[test]
    fn paths_split_into_mac_format_and_rest() {
        let path = parse_camera_path("AA-BB-CC-DD-EE-FF/general/AB").unwrap();
        assert_eq!(path.mac, mac("aa:bb:cc:dd:ee:ff"));
        assert_eq!(path.format, Some(DataFormat::General));
        assert_eq!(path.rest, "AB");

        let path = parse_camera_path("aabbccddeeff").unwrap();
        assert_eq!(path.format, None);
        let path = parse_camera_path("aabbccddeeff/").unwrap();
        assert_eq!(path.format, None);
        let path = parse_camera_path("aa%3Abb%3Acc%3Add%3Aee%3Aff/AI-Motion/x/y/").unwrap();
        assert_eq!(path.format, Some(DataFormat::AiMotion));
        assert_eq!(path.rest, "x/y/");
    }

    #[test]
    fn bad_segments_are_named() {
        let err = parse_camera_path("not-a-mac/general").unwrap_err();
        assert!(err.to_string().contains("\"not-a-mac\""), "{err}");
        let err = parse_camera_path("aa-bb-cc-dd-ee-ff/crowd").unwrap_err();
        assert!(err.to_string().contains("\"crowd\""), "{err}");
        assert!(parse_camera_path("").is_err());
    }

    #[test]
    fn registry_rejects_repeated_names_and_addresses() {
        let a = Camera::new("a", mac("aa:bb:cc:dd:ee:ff"), DataFormat::General);
        let b = Camera::new("b", mac("AABBCCDDEEFF"), DataFormat::AiCrowd);
        let err = CameraRegistry::new(vec![a.clone(), b]).unwrap_err();
        assert!(err.to_string().contains("\"a\" and \"b\""), "{err}");
        let err = CameraRegistry::new(vec![a.clone(), a.clone()]).unwrap_err();
        assert!(matches!(err, CameraError::DuplicateName(_)));

        let registry = CameraRegistry::new(vec![a]).unwrap();
        let found = registry.lookup(&mac("aa-bb-cc-dd-ee-ff")).unwrap();
        assert_eq!(found.camera().url_path(), "/ipro/aa-bb-cc-dd-ee-ff/general");
        assert_eq!(found.camera().file_owner(), "ipro-aabbccddeeff");
        assert!(matches!(found.authorize(None), AuthCheck::Allowed));
    }
}
