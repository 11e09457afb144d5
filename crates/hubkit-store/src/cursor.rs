use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::StoreError;

/// Position of a stored record or action run: its `seq`, which grows with every commit.
///
/// A cursor is text in the API (`"42"`), so clients that parse JSON numbers as doubles
/// keep every digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(i64);

impl Cursor {
    pub(crate) fn from_seq(seq: i64) -> Cursor {
        Cursor(seq)
    }

    /// Returns the `seq` of the record.
    pub fn seq(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;

    /// Parses a decimal integer from 0 to `i64::MAX`, without sign or spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || StoreError::InvalidCursor {
            value: s.to_owned(),
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        s.parse::<i64>().map(Cursor).map_err(|_| invalid())
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
