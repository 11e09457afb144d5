//! The `Content-Disposition` header of an upload (RFC 6266), read for its filename.

use percent_encoding::percent_decode;

use crate::error::DispositionError;

/// The parts of a `Content-Disposition` header that hubkit uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentDisposition {
    /// Disposition type in lower case, such as `attachment` or `inline`.
    pub disposition_type: String,
    /// The filename as sent, decoded but not yet made safe: `filename*` when it
    /// could be decoded, otherwise `filename`. `None` when neither is present or both
    /// are empty.
    pub filename: Option<String>,
}

impl ContentDisposition {
    /// Parses a raw header value.
    ///
    /// `filename*` (RFC 8187, formerly RFC 5987) wins over `filename`. A `filename*` with a
    /// charset other than UTF-8 or ISO-8859-1 is ignored, as RFC 6266 section 4.3 requires, so
    /// `filename` applies. A quoted `filename` that is not valid UTF-8 is read as
    /// ISO-8859-1.
    ///
    /// # Errors
    ///
    /// [`DispositionError`] naming the rule that the value breaks: a missing disposition
    /// type, a parameter without `=`, an unterminated quoted string, a `filename*`
    /// without its `charset'language'` prefix or with invalid percent-encoding, or a
    /// filename parameter given twice.
    pub fn parse(value: &[u8]) -> Result<ContentDisposition, DispositionError> {
        let mut parser = Parser {
            input: value,
            at: 0,
        };
        parser.skip_space();
        let disposition_type = parser.token();
        if disposition_type.is_empty() {
            return Err(DispositionError::MissingType);
        }
        let mut filename: Option<String> = None;
        let mut extended: Option<Option<String>> = None;
        loop {
            parser.skip_space();
            if parser.at_end() {
                break;
            }
            if !parser.eat(b';') {
                return Err(DispositionError::ExpectedSemicolon { at: parser.at });
            }
            parser.skip_space();
            if parser.at_end() {
                break;
            }
            let name = parser.token().to_ascii_lowercase();
            if name.is_empty() {
                return Err(DispositionError::ExpectedParameter { at: parser.at });
            }
            parser.skip_space();
            if !parser.eat(b'=') {
                return Err(DispositionError::MissingEquals { name });
            }
            parser.skip_space();
            let raw = parser.value(&name)?;
            match name.as_str() {
                "filename" => {
                    if filename.is_some() {
                        return Err(DispositionError::Repeated { name });
                    }
                    filename = Some(decode_bytes(&raw));
                }
                "filename*" => {
                    if extended.is_some() {
                        return Err(DispositionError::Repeated { name });
                    }
                    extended = Some(decode_extended(&raw)?);
                }
                _ => {}
            }
        }
        let filename = extended
            .flatten()
            .filter(|name| !name.is_empty())
            .or(filename.filter(|name| !name.is_empty()));
        Ok(ContentDisposition {
            disposition_type,
            filename,
        })
    }
}

/// Cursor over the header bytes.
struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.at >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Reads an RFC 9110 token (plus `*`, which ends `filename*`) in lower case.
    fn token(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_token_byte) {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.input[start..self.at]).to_ascii_lowercase()
    }

    /// Reads a parameter value: a quoted string with its escapes removed, or the bytes up
    /// to the next `;` with surrounding whitespace removed. Unquoted values may contain
    /// spaces and other bytes that a token may not, because many devices send them.
    fn value(&mut self, name: &str) -> Result<Vec<u8>, DispositionError> {
        if !self.eat(b'"') {
            let start = self.at;
            while self.peek().is_some_and(|byte| byte != b';') {
                self.at += 1;
            }
            return Ok(self.input[start..self.at].trim_ascii_end().to_vec());
        }
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(DispositionError::UnterminatedQuote {
                        name: name.to_owned(),
                    });
                }
                Some(b'"') => {
                    self.at += 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let Some(escaped) = self.peek() else {
                        return Err(DispositionError::UnterminatedQuote {
                            name: name.to_owned(),
                        });
                    };
                    value.push(escaped);
                    self.at += 1;
                }
                Some(byte) => {
                    value.push(byte);
                    self.at += 1;
                }
            }
        }
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Reads bytes as UTF-8 when they are valid UTF-8, and as ISO-8859-1 otherwise.
fn decode_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&byte| char::from(byte)).collect(),
    }
}

/// Decodes an RFC 8187 `ext-value` (`charset'language'percent-encoded`). Returns
/// `Ok(None)` for a charset other than UTF-8 and ISO-8859-1.
fn decode_extended(raw: &[u8]) -> Result<Option<String>, DispositionError> {
    let text = decode_bytes(raw);
    let mut parts = text.splitn(3, '\'');
    let (Some(charset), Some(_language), Some(encoded)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(DispositionError::InvalidExtendedValue {
            value: crate::detect::excerpt(&text),
            reason: "it lacks the charset'language' prefix, as in UTF-8''photo.jpg",
        });
    };
    let encoded = encoded.as_bytes();
    if (0..encoded.len()).any(|index| is_broken_escape(encoded, index)) {
        return Err(DispositionError::InvalidExtendedValue {
            value: crate::detect::excerpt(&text),
            reason: "a % is not followed by two hex digits",
        });
    }
    let bytes: Vec<u8> = percent_decode(encoded).collect();
    if charset.eq_ignore_ascii_case("utf-8") {
        return match String::from_utf8(bytes) {
            Ok(name) => Ok(Some(name)),
            Err(_) => Err(DispositionError::InvalidExtendedValue {
                value: crate::detect::excerpt(&text),
                reason: "its charset is UTF-8 but the decoded bytes are not valid UTF-8",
            }),
        };
    }
    if charset.eq_ignore_ascii_case("iso-8859-1") {
        return Ok(Some(bytes.iter().map(|&byte| char::from(byte)).collect()));
    }
    Ok(None)
}

/// Returns whether the `%` at `index` is not followed by two hex digits.
fn is_broken_escape(bytes: &[u8], index: usize) -> bool {
    if bytes[index] != b'%' {
        return false;
    }
    let hex = |offset: usize| bytes.get(index + offset).is_some_and(u8::is_ascii_hexdigit);
    !(hex(1) && hex(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filename(value: &str) -> Option<String> {
        ContentDisposition::parse(value.as_bytes())
            .expect("valid header")
            .filename
    }

    #[test]
    fn quoted_filename() {
        assert_eq!(
            filename("attachment; filename=\"snapshot.jpg\""),
            Some("snapshot.jpg".into())
        );
    }

    #[test]
    fn token_filename() {
        assert_eq!(
            filename("attachment; filename=snapshot.jpg"),
            Some("snapshot.jpg".into())
        );
    }

    #[test]
    fn extended_filename_wins() {
        let value = "attachment; filename=\"fallback.jpg\"; filename*=UTF-8''%E2%82%AC%20rates.jpg";
        assert_eq!(filename(value), Some("€ rates.jpg".into()));
        let reversed =
            "attachment; filename*=UTF-8''%E2%82%AC%20rates.jpg; filename=\"fallback.jpg\"";
        assert_eq!(filename(reversed), Some("€ rates.jpg".into()));
    }

    #[test]
    fn extended_latin1_filename() {
        assert_eq!(
            filename("attachment; filename*=iso-8859-1'en'%A3%20rates.jpg"),
            Some("£ rates.jpg".into())
        );
    }

    #[test]
    fn unknown_charset_falls_back() {
        let value = "attachment; filename*=KOI8-R''%F0.jpg; filename=\"plain.jpg\"";
        assert_eq!(filename(value), Some("plain.jpg".into()));
    }

    #[test]
    fn quoted_semicolon_and_escape() {
        assert_eq!(
            filename(r#"attachment; filename="a;b \"c\".jpg""#),
            Some("a;b \"c\".jpg".into())
        );
    }

    #[test]
    fn names_are_case_insensitive() {
        let parsed = ContentDisposition::parse(b"INLINE; FileName=\"x.png\"").expect("valid");
        assert_eq!(parsed.disposition_type, "inline");
        assert_eq!(parsed.filename, Some("x.png".into()));
    }

    #[test]
    fn no_filename() {
        assert_eq!(filename("attachment"), None);
        assert_eq!(filename("attachment;"), None);
        assert_eq!(filename("attachment; filename=\"\""), None);
        assert_eq!(filename("inline; size=100"), None);
    }

    #[test]
    fn raw_utf8_and_latin1_bytes() {
        let utf8 = "attachment; filename=\"café.jpg\"";
        assert_eq!(filename(utf8), Some("café.jpg".into()));
        let latin1 = b"attachment; filename=\"caf\xe9.jpg\"";
        let parsed = ContentDisposition::parse(latin1).expect("valid");
        assert_eq!(parsed.filename, Some("café.jpg".into()));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for (value, expected) in [
            ("", "missing"),
            ("; filename=a.jpg", "missing"),
            ("attachment filename=a.jpg", "expected `;`"),
            ("attachment; filename", "has no `=`"),
            ("attachment; filename=\"a.jpg", "unterminated"),
            ("attachment; filename=\"a.jpg\\", "unterminated"),
            ("attachment; filename*=a.jpg", "charset'language'"),
            ("attachment; filename*=UTF-8''%zz.jpg", "two hex digits"),
            ("attachment; filename*=UTF-8''%ff.jpg", "not valid UTF-8"),
            (
                "attachment; filename=a.jpg; filename=b.jpg",
                "more than once",
            ),
            ("attachment; =a.jpg", "parameter name"),
        ] {
            let err = ContentDisposition::parse(value.as_bytes())
                .expect_err(value)
                .to_string();
            assert!(err.contains(expected), "{value:?}: {err}");
        }
    }
}
