//! Raw camera requests kept in the database, and the rows a camera request writes.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::files::NewFile;
use crate::{NewActionRun, StoreError};

/// A raw camera request to keep in the `camera_requests` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCameraRequest {
    /// Id that the records refer to; unique.
    pub id: String,
    /// The camera's file owner name, such as `ipro-aabbccddeeff`.
    pub camera: String,
    /// Time the request was received.
    pub received_at: DateTime<Utc>,
    /// The request as bytes.
    pub raw: Vec<u8>,
}

/// A stored raw camera request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraRequest {
    /// The camera's file owner name.
    pub camera: String,
    /// Time the request was received.
    pub received_at: DateTime<Utc>,
    /// The request as bytes.
    pub raw: Vec<u8>,
}

/// The rows of one camera request besides its records: files, each with the indexes of
/// the records that refer to it, the raw request when it is kept in the database, and
/// the action runs that the records fired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CameraWrite {
    /// Stored files and the records linked to each.
    pub files: Vec<(NewFile, Vec<usize>)>,
    /// The raw request, unless it was stored as a file.
    pub raw: Option<NewCameraRequest>,
    /// Action runs to store as pending, each referring to its record by index.
    pub runs: Vec<NewActionRun>,
}

/// A [`NewCameraRequest`] with its receipt time in nanoseconds.
pub(crate) struct EncodedCameraRequest {
    pub id: String,
    pub camera: String,
    pub received_ns: i64,
    pub raw: Vec<u8>,
}

impl NewCameraRequest {
    pub(crate) fn encode(self) -> Result<EncodedCameraRequest, StoreError> {
        let received_ns = self.received_at.timestamp_nanos_opt().ok_or_else(|| {
            StoreError::FileTimestampOutOfRange {
                path: self.id.clone(),
            }
        })?;
        Ok(EncodedCameraRequest {
            id: self.id,
            camera: self.camera,
            received_ns,
            raw: self.raw,
        })
    }
}

/// Adds a raw request row.
pub(crate) fn insert_camera_request(
    conn: &Connection,
    request: &EncodedCameraRequest,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO camera_requests (id, camera, received_ns, raw) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        request.id,
        request.camera,
        request.received_ns,
        request.raw
    ])?;
    Ok(())
}

/// Returns the raw request with `id`.
pub(crate) fn camera_request(
    conn: &Connection,
    id: &str,
) -> Result<Option<CameraRequest>, StoreError> {
    conn.prepare_cached("SELECT camera, received_ns, raw FROM camera_requests WHERE id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([id], |row| {
                    let received_ns: i64 = row.get(1)?;
                    Ok(CameraRequest {
                        camera: row.get(0)?,
                        received_at: DateTime::from_timestamp_nanos(received_ns),
                        raw: row.get(2)?,
                    })
                })
                .optional()
        })
        .map_err(|source| StoreError::Read { source })
}
