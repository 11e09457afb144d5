use std::fmt;

/// Maximum number of characters of a sent value that an error message repeats.
const EXCERPT_CHARS: usize = 60;

/// Error returned when a request payload cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Percent-decoded query text or the body is not valid UTF-8.
    #[error(
        "{part} is not valid UTF-8 at byte {offset}; {hint}",
        hint = part.hint()
    )]
    InvalidUtf8 {
        /// Part of the request that contains the invalid bytes.
        part: PayloadPart,
        /// Byte offset of the first invalid byte: in the raw query string for query
        /// parts, in the body as sent (a BOM included) for the body.
        offset: usize,
    },

    /// The body is empty or contains only whitespace.
    #[error("request body is empty; send one JSON value such as {{\"temperature\": 25.5}}")]
    EmptyBody,

    /// The body is not one valid JSON value.
    #[error(
        "invalid JSON at line {line}, column {column}: {reason}; \
         send one JSON value such as {{\"temperature\": 25.5}}"
    )]
    InvalidJson {
        /// Line of the error, starting at 1.
        line: usize,
        /// Column of the error in bytes as serde_json counts them, starting at 1.
        column: usize,
        /// Parser message without its position.
        reason: String,
    },

    /// The request has no `Content-Type` header.
    #[error("Content-Type header is missing; send Content-Type: application/json")]
    MissingContentType,

    /// The `Content-Type` header is not a media type.
    #[error(
        "Content-Type {value:?} is not a valid media type; send Content-Type: application/json"
    )]
    InvalidContentType {
        /// Header value as sent, shortened to 60 characters.
        value: String,
    },

    /// The media type is not JSON.
    #[error(
        "media type {media_type:?} is not JSON; \
         send Content-Type: application/json or application/<name>+json"
    )]
    UnsupportedMediaType {
        /// Media type without parameters, shortened to 60 characters.
        media_type: String,
    },

    /// The media type is JSON but declares a charset other than UTF-8.
    #[error(
        "charset {charset:?} is not supported; JSON must be UTF-8, \
         so send charset=utf-8 or no charset"
    )]
    UnsupportedCharset {
        /// Charset parameter as sent, shortened to 60 characters.
        charset: String,
    },
}

impl DecodeError {
    /// Returns a stable kebab-case id of the error kind, for the `type` of an RFC 9457
    /// problem.
    pub fn problem_slug(&self) -> &'static str {
        match self {
            DecodeError::InvalidUtf8 { .. } => "invalid-utf8",
            DecodeError::EmptyBody => "empty-body",
            DecodeError::InvalidJson { .. } => "invalid-json",
            DecodeError::MissingContentType => "missing-content-type",
            DecodeError::InvalidContentType { .. } => "invalid-content-type",
            DecodeError::UnsupportedMediaType { .. } => "unsupported-media-type",
            DecodeError::UnsupportedCharset { .. } => "unsupported-charset",
        }
    }
}

/// Part of a request that contains bytes that are not valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadPart {
    /// Request body.
    Body,
    /// Key of a query parameter, which cannot be shown because it is not text.
    QueryKey {
        /// Position of the parameter among the non-empty `&`-separated pieces, from 1.
        index: usize,
    },
    /// Value of a query parameter.
    QueryValue {
        /// Decoded key of the parameter, shortened to 60 characters.
        key: String,
    },
}

impl PayloadPart {
    fn hint(&self) -> &'static str {
        match self {
            PayloadPart::Body => "send the body encoded as UTF-8",
            PayloadPart::QueryKey { .. } | PayloadPart::QueryValue { .. } => {
                "percent-encode text as UTF-8, such as caf%C3%A9 for \"café\""
            }
        }
    }
}

impl fmt::Display for PayloadPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadPart::Body => f.write_str("request body"),
            PayloadPart::QueryKey { index } => write!(f, "key of query parameter {index}"),
            PayloadPart::QueryValue { key } => write!(f, "value of query parameter {key:?}"),
        }
    }
}

/// Returns `value` cut to [`EXCERPT_CHARS`] characters, with "..." appended when cut.
pub(crate) fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}
