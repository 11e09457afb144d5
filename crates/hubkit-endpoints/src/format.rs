use std::fmt;

use serde::{Deserialize, Serialize};

/// Way a webhook receives its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadFormat {
    /// Query string of a GET request (`query-params`).
    QueryParams,
    /// JSON body of a POST request (`json`).
    Json,
}

impl PayloadFormat {
    /// Returns the HTTP method that carries this format: `GET` or `POST`.
    pub fn method(self) -> &'static str {
        match self {
            PayloadFormat::QueryParams => "GET",
            PayloadFormat::Json => "POST",
        }
    }

    /// Returns the configuration name: `query-params` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::QueryParams => "query-params",
            PayloadFormat::Json => "json",
        }
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PayloadFormat;

    #[test]
    fn format_names_match_serde() {
        for format in [PayloadFormat::QueryParams, PayloadFormat::Json] {
            let serialized = serde_json::to_string(&format).expect("format serializes");
            assert_eq!(serialized, format!("\"{}\"", format.as_str()));
        }
    }

    #[test]
    fn format_methods() {
        assert_eq!(PayloadFormat::QueryParams.method(), "GET");
        assert_eq!(PayloadFormat::Json.method(), "POST");
    }

    #[test]
    fn format_rejects_unknown_name() {
        let parsed = serde_json::from_str::<PayloadFormat>("\"form\"");
        assert!(parsed.is_err());
    }
}
