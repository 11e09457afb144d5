use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Namespace of the name-based UUIDs (version 5) that hubkit derives for areas and layers.
const HUBKIT_NAMESPACE: Uuid = Uuid::from_u128(0x6b1d_4a52_3e2f_4d8c_9a51_0c7e_8f3a_2d41);

/// Derives a stable UUID from a kind and a name, so an area or layer keeps its id across
/// restarts without the operator writing one.
pub fn derive_uuid(kind: &str, name: &str) -> Uuid {
    let mut input = Vec::with_capacity(kind.len() + name.len() + 1);
    input.extend_from_slice(kind.as_bytes());
    input.push(0);
    input.extend_from_slice(name.as_bytes());
    Uuid::new_v5(&HUBKIT_NAMESPACE, &input)
}

/// Identifier of one stored record: 32 lowercase hex digits without dashes, as in Gravio.
///
/// New ids are UUIDv7, so they sort by creation time. The ids one process makes are
/// strictly increasing, so they never repeat; ids of different processes differ in
/// their random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataId(Uuid);

impl DataId {
    /// Creates a new, time-ordered id.
    pub fn new() -> DataId {
        DataId(Uuid::now_v7())
    }

    /// Returns the underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for DataId {
    fn default() -> Self {
        DataId::new()
    }
}

impl From<Uuid> for DataId {
    fn from(uuid: Uuid) -> Self {
        DataId(uuid)
    }
}

impl fmt::Display for DataId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

impl fmt::Debug for DataId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataId({})", self.0.simple())
    }
}

/// Error returned when a string is not 32 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("data id {0:?} is invalid; it must be 32 hex digits without dashes")]
pub struct InvalidDataId(String);

impl FromStr for DataId {
    type Err = InvalidDataId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidDataId(s.to_owned()));
        }
        Uuid::parse_str(s)
            .map(DataId)
            .map_err(|_| InvalidDataId(s.to_owned()))
    }
}

impl Serialize for DataId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DataId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Short, stable identifier of a device such as a webhook: 12 lowercase hex digits.
///
/// It is derived from the device's kind and name (the first 6 bytes of a name-based
/// UUID), so it survives restarts and config reloads while the name stays the same.
/// It names the device's folder on disk, so it contains only `[0-9a-f]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShortId(String);

impl ShortId {
    /// Derives the short id of the device of `kind` called `name`.
    pub fn derive(kind: &str, name: &str) -> ShortId {
        let uuid = derive_uuid(kind, name);
        let hex = uuid.simple().to_string();
        ShortId(hex[..12].to_owned())
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_id_is_32_hex_digits() {
        let id = DataId::new().to_string();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn data_id_round_trips() {
        let id = DataId::new();
        let parsed: DataId = id.to_string().parse().expect("valid id");
        assert_eq!(parsed, id);
    }

    #[test]
    fn data_id_rejects_dashes_and_length() {
        assert!("0123".parse::<DataId>().is_err());
        assert!(
            "01234567-89ab-cdef-0123-456789abcdef"
                .parse::<DataId>()
                .is_err()
        );
        assert!(
            "0123456789abcdef0123456789abcdeg"
                .parse::<DataId>()
                .is_err()
        );
    }

    #[test]
    fn data_ids_sort_by_creation() {
        let first = DataId::new();
        let second = DataId::new();
        assert!(first < second);
    }

    #[test]
    fn short_id_is_stable_and_distinct() {
        let a = ShortId::derive("webhook", "sensor-data");
        assert_eq!(a, ShortId::derive("webhook", "sensor-data"));
        assert_ne!(a, ShortId::derive("webhook", "sensor-data-basic"));
        assert_ne!(a, ShortId::derive("camera", "sensor-data"));
        assert_eq!(a.as_str().len(), 12);
    }

    #[test]
    fn short_id_has_fixed_value() {
        // The id names folders on disk, so its derivation must never change. The
        // expected value was computed independently with Python's uuid.uuid5.
        assert_eq!(
            ShortId::derive("webhook", "sensor-data").as_str(),
            "2bd3d393b13a"
        );
    }
}
