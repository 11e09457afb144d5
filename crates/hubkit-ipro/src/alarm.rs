//! Alarm source codes of the HTTP alarm notification.

/// Returns the meaning of a two-digit hex alarm source code that a camera substitutes for
/// `%alrmsrc2` in its notification data, or `None` for a code with no known meaning.
///
/// The SD card codes come from i-PRO's notes on SD card diagnostics. `AB` is the code an
/// on-camera application sends when it raises alarm 171 through the camera's
/// application API.
pub fn alarm_source(code: u8) -> Option<&'static str> {
    match code {
        0x01 => Some("SD card full"),
        0x02 => Some("SD card not detected"),
        0x03 => Some("SD card capacity warning"),
        0x04 | 0xA5 => Some("SD card write error"),
        0xA6 => Some("SD card read or delete error"),
        0xA7 => Some("SD card file system error"),
        0xA8 => Some("SD card other error"),
        0xAB => Some("on-camera application alarm"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_meanings() {
        assert_eq!(alarm_source(0x01), Some("SD card full"));
        assert_eq!(alarm_source(0x04), alarm_source(0xA5));
        assert_eq!(alarm_source(0xAB), Some("on-camera application alarm"));
        assert_eq!(alarm_source(0x10), None);
    }
}
