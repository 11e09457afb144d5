//! Decodes the payload of a webhook request into a JSON value: the query string of a
//! GET request with [`decode_query`], or the body of a POST request with
//! [`check_json_media_type`] and [`decode_json`].
//!
//! Query values stay strings exactly as sent, and a repeated key becomes an array of
//! its values. JSON bodies must be one UTF-8 JSON value. Every failure is a
//! [`DecodeError`] whose message names the value and what the sender should change,
//! and whose [`DecodeError::problem_slug`] gives a stable id for an RFC 9457 problem
//! `type`.
//!
//! This crate does no I/O. Reading the request, limiting its size and choosing which
//! decoder applies are left to the server.

#![deny(missing_docs)]

mod error;
mod json;
mod query;

pub use error::{DecodeError, PayloadPart};
pub use json::{check_json_media_type, decode_json, is_json_media_type};
pub use query::decode_query;
