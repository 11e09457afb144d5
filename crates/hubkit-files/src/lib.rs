//! File reception for hubkit: detecting the type of an uploaded file, naming it safely
//! and storing it so that a crash never leaves a partial file under a stored name.
//!
//! - [`Detector`] decides a file's media type and extension from the `Content-Type`
//!   header, then the extension of the `Content-Disposition` filename, then the first
//!   [`HEAD_BYTES`] of the content (compiled-in signatures, then the system's
//!   shared-mime-info database when installed).
//! - [`ContentDisposition`] reads the filename of RFC 6266 headers, `filename*`
//!   included; [`safe_name`] turns it into a name that cannot leave its folder.
//! - [`FileStore`] writes uploads to `<owner>/<YYYYMMDD>/<name>` under its folder through
//!   a temporary file, and [`BackgroundUpload`] drives an upload from async code.
//! - [`select_expired`] picks the files that a [`Retention`] policy removes.

#![deny(missing_docs)]

mod background;
mod detect;
mod disposition;
mod error;
mod extension;
mod name;
mod retention;
mod storage;

pub use background::BackgroundUpload;
pub use detect::{
    DetectedBy, Detector, FileType, HEAD_BYTES, Undetected, from_content_type, from_filename,
};
pub use disposition::ContentDisposition;
pub use error::{DispositionError, FileError, PathError};
pub use extension::{canonical_media_type, extension_for, extension_matches};
pub use name::{MAX_NAME_BYTES, default_name, numbered_name, safe_name};
pub use retention::{FileAge, RemovalReason, Retention, select_expired};
pub use storage::{FileStore, StoredFile, Upload};
