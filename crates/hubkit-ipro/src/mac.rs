//! Camera MAC addresses.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A MAC address, shown as lower-case hex pairs joined by `:`, such as
/// `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// A MAC address that cannot be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "MAC address {value:?} is invalid: write 12 hex digits, in pairs separated by `:` or `-` \
     or not at all, such as AA-BB-CC-DD-EE-FF"
)]
pub struct MacError {
    /// The value as given, cut to 40 characters.
    pub value: String,
}

impl Mac {
    /// Parses `AA:BB:CC:DD:EE:FF`, `AA-BB-CC-DD-EE-FF` or `AABBCCDDEEFF`, in any case.
    ///
    /// # Errors
    ///
    /// [`MacError`] when the value is not 12 hex digits in one of those layouts.
    pub fn parse(value: &str) -> Result<Mac, MacError> {
        let error = || MacError {
            value: value.chars().take(40).collect(),
        };
        let digits: Vec<u8> = match value.len() {
            12 => value.bytes().collect(),
            17 => {
                let separator = value.as_bytes()[2];
                if separator != b':' && separator != b'-' {
                    return Err(error());
                }
                let mut digits = Vec::with_capacity(12);
                for (index, byte) in value.bytes().enumerate() {
                    if index % 3 == 2 {
                        if byte != separator {
                            return Err(error());
                        }
                    } else {
                        digits.push(byte);
                    }
                }
                digits
            }
            _ => return Err(error()),
        };
        let mut bytes = [0u8; 6];
        for (slot, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| error())?;
            if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(error());
            }
            *slot = u8::from_str_radix(text, 16).map_err(|_| error())?;
        }
        Ok(Mac(bytes))
    }

    /// Returns the six bytes.
    pub fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// Returns the form used in hub URLs: lower-case hex pairs joined by `-`.
    pub fn url_form(&self) -> String {
        self.join('-')
    }

    fn join(&self, separator: char) -> String {
        let pairs: Vec<String> = self.0.iter().map(|b| format!("{b:02x}")).collect();
        pairs.join(&separator.to_string())
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.join(':'))
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(value: &str) -> Result<Mac, MacError> {
        Mac::parse(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_normalise_to_one_form() {
        let spellings = [
            "AA:BB:CC:DD:EE:FF",
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "aa-Bb-cC-dd-EE-ff",
            "AABBCCDDEEFF",
            "aabbccddeeff",
        ];
        for spelling in spellings {
            let mac = Mac::parse(spelling).unwrap();
            assert_eq!(mac.to_string(), "aa:bb:cc:dd:ee:ff", "{spelling}");
            assert_eq!(mac.url_form(), "aa-bb-cc-dd-ee-ff", "{spelling}");
        }
    }

    #[test]
    fn invalid_spellings_are_rejected() {
        let invalid = [
            "",
            "AABBCCDDEE",
            "AABBCCDDEEFF00",
            "AA:BB-CC:DD:EE:FF",
            "AA.BB.CC.DD.EE.FF",
            "GG:BB:CC:DD:EE:FF",
            "+A:BB:CC:DD:EE:FF",
            "AABBCCDDEEF\u{e9}",
            "AA:BB:CC:DD:EE:F",
        ];
        for value in invalid {
            let err = Mac::parse(value).expect_err(value);
            assert!(err.to_string().contains("12 hex digits"), "{value}: {err}");
        }
    }
}
