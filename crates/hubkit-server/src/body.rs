//! The response body type shared by every handler.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// Body of every response: a boxed body that cannot fail.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// Returns a body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed()
}
