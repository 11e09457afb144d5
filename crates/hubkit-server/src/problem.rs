//! RFC 9457 problem details, the body of every error response.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::body::{ResponseBody, full};

/// Prefix of every problem `type`; the slug after it names the condition and never changes.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:hubkit:problem:";

/// An error response: status, a stable type slug, a title and a detail telling the client
/// what to change.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl Problem {
    /// Creates a problem with the given status, type slug, title and detail.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            slug,
            title,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the response, such as `Allow` or `WWW-Authenticate`.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Problem {
        self.headers.push((name, value));
        self
    }

    /// Returns the status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Returns the type slug, such as `invalid-json`.
    pub fn slug(&self) -> &'static str {
        self.slug
    }

    /// Returns the detail text.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Builds the `application/problem+json` response.
    pub fn into_response(self) -> Response<ResponseBody> {
        let body = ProblemBody {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        // Serializing a struct of strings and a number cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::new(full(Bytes::from(json)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }

    /// 404 for a path that no route serves.
    pub fn route_not_found(path: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not Found",
            format!(
                "no resource at {:?}; webhooks are under /webhook/urls/ and the API under /api/v1/",
                truncate(path, 120)
            ),
        )
    }

    /// 401 for a missing or wrong admin token.
    pub fn admin_unauthorized(detail: &str) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            format!("{detail}; send the header Authorization: Bearer <admin token>"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hubkit\""),
        )
    }

    /// 405 naming the methods a resource allows.
    pub fn method_not_allowed(allow: &'static str, detail: String) -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            detail,
        )
        .with_header(header::ALLOW, HeaderValue::from_static(allow))
    }

    /// 503 when the store could not commit; the client may retry.
    pub fn store_unavailable() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Service Unavailable",
            "the record could not be stored and nothing was kept; retry later",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }
}

/// Shortens `text` to at most `max` characters for use in a message, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((index, _)) => format!("{}...", &text[..index]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn problem_body_has_rfc9457_fields() {
        let response = Problem::new(StatusCode::BAD_REQUEST, "invalid-json", "Bad Request", "x")
            .into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["type"], "urn:hubkit:problem:invalid-json");
        assert_eq!(json["title"], "Bad Request");
        assert_eq!(json["status"], 400);
        assert_eq!(json["detail"], "x");
    }

    #[test]
    fn truncate_cuts_long_text() {
        assert_eq!(truncate("abcdef", 3), "abc...");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 2), "éé...");
    }
}
