//! File-type detection: the `Content-Type` header, then the filename's extension, then
//! the first bytes of the body.

use std::fmt;
use std::path::PathBuf;

use crate::extension::{canonical_media_type, extension_for};

/// Number of leading body bytes that signature detection reads: 3 KiB.
pub const HEAD_BYTES: usize = 3 * 1024;

/// Media types that name no specific type of file. A header or filename that gives one of
/// them leaves the decision to the next step.
const UNSPECIFIC_TYPES: &[&str] = &[
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "application/x-unknown",
    "application/x-binary",
    // curl sends this type for `--data-binary` when the command sets no Content-Type.
    "application/x-www-form-urlencoded",
    "application/x-zerosize",
    "all/all",
    "all/allfiles",
];

/// Detection step that decided a file's type, in the order the steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetectedBy {
    /// The request's `Content-Type` header.
    ContentType,
    /// The extension of the filename in `Content-Disposition`.
    Filename,
    /// A magic signature compiled into hubkit (the `infer` crate).
    Signature,
    /// The system's shared-mime-info database (through `tree_magic_mini`).
    SharedMimeInfo,
}

impl DetectedBy {
    /// Returns the step's name as records and logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectedBy::ContentType => "content-type",
            DetectedBy::Filename => "filename",
            DetectedBy::Signature => "signature",
            DetectedBy::SharedMimeInfo => "shared-mime-info",
        }
    }
}

impl fmt::Display for DetectedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detected file type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileType {
    /// Media type without parameters, in lower case, such as `image/jpeg`.
    pub media_type: String,
    /// File extension without the dot, such as `jpg`.
    pub extension: String,
    /// Step that identified the type.
    pub detected_by: DetectedBy,
}

/// Result of a detection that identified nothing: what each step found, for the error
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undetected {
    /// Finding of the `Content-Type` step.
    pub content_type: String,
    /// Finding of the filename step.
    pub filename: String,
    /// Finding of the signature steps.
    pub content: String,
}

impl fmt::Display for Undetected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the file type could not be detected: Content-Type: {}; Content-Disposition \
             filename: {}; first bytes: {}",
            self.content_type, self.filename, self.content
        )
    }
}

/// Detects file types. Create one at start and share it: creating it checks once whether
/// the shared-mime-info database is installed.
#[derive(Clone, Debug)]
pub struct Detector {
    /// Path of the shared-mime-info `magic` file, when one was found.
    shared_mime_info: Option<PathBuf>,
}

impl Detector {
    /// Creates a detector that uses the shared-mime-info database when one is installed.
    ///
    /// Looks for the database where `tree_magic_mini` reads it, loads it once so the first
    /// upload does not pay for parsing it, and logs at info when none is found.
    pub fn new() -> Detector {
        let shared_mime_info = find_shared_mime_info();
        match &shared_mime_info {
            Some(path) => {
                // The first lookup parses the whole database (about 6 ms).
                let _ = tree_magic_mini::from_u8(b"");
                tracing::info!(
                    magic.path = %path.display(),
                    "file-type detection uses the shared-mime-info database"
                );
            }
            None => tracing::info!(
                "no shared-mime-info database found (install the shared-mime-info package); \
                 file-type detection uses its compiled-in signatures only"
            ),
        }
        Detector { shared_mime_info }
    }

    /// Creates a detector that never uses the shared-mime-info database, as on a machine
    /// without it.
    pub fn without_shared_mime_info() -> Detector {
        Detector {
            shared_mime_info: None,
        }
    }

    /// Returns whether the shared-mime-info database is used.
    pub fn has_shared_mime_info(&self) -> bool {
        self.shared_mime_info.is_some()
    }

    /// Runs the three steps in order and returns the first type identified.
    ///
    /// `content_type` is the raw `Content-Type` header value, `filename` the filename from
    /// `Content-Disposition` and `head` the first [`HEAD_BYTES`] bytes of the body (fewer
    /// when the body is shorter).
    ///
    /// # Errors
    ///
    /// [`Undetected`], which lists each step's finding, when no step identifies a type.
    pub fn detect(
        &self,
        content_type: Option<&str>,
        filename: Option<&str>,
        head: &[u8],
    ) -> Result<FileType, Undetected> {
        if let Some(found) = from_content_type(content_type) {
            return Ok(found);
        }
        if let Some(found) = filename.and_then(from_filename) {
            return Ok(found);
        }
        if let Some(found) = self.from_content(head) {
            return Ok(found);
        }
        Err(Undetected {
            content_type: match content_type {
                None => "missing".to_owned(),
                Some(value) => format!("{:?} names no specific type", excerpt(value)),
            },
            filename: match filename {
                None => "none".to_owned(),
                Some(name) => format!("{:?} has no known extension", excerpt(name)),
            },
            content: format!(
                "no known signature in the first {} bytes{}",
                head.len().min(HEAD_BYTES),
                if self.has_shared_mime_info() {
                    ""
                } else {
                    " (the shared-mime-info database is not installed)"
                }
            ),
        })
    }

    /// Identifies a type from the first bytes of a file: compiled-in signatures first,
    /// then the shared-mime-info database when it is installed.
    pub fn from_content(&self, head: &[u8]) -> Option<FileType> {
        let head = &head[..head.len().min(HEAD_BYTES)];
        if head.is_empty() {
            return None;
        }
        if let Some(kind) = infer::get(head)
            && let Some(found) = file_type(kind.mime_type(), DetectedBy::Signature)
        {
            return Some(found);
        }
        if self.shared_mime_info.is_some() {
            let media_type = tree_magic_mini::from_u8(head);
            // tree_magic_mini 3.2 calls any content without a NUL byte `text/plain`, so
            // a text type counts only for content that is UTF-8 text.
            if media_type.starts_with("text/") && !looks_like_text(head) {
                return None;
            }
            return file_type(media_type, DetectedBy::SharedMimeInfo);
        }
        None
    }
}

impl Default for Detector {
    fn default() -> Detector {
        Detector::new()
    }
}

/// Identifies a type from a `Content-Type` header value. Returns `None` for a missing or
/// unparseable value and for types that name no specific file type, such as
/// `application/octet-stream`.
pub fn from_content_type(value: Option<&str>) -> Option<FileType> {
    let value = value?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    let media_type: mime::Mime = essence.parse().ok()?;
    let (kind, subtype) = (media_type.type_(), media_type.subtype());
    if kind == mime::STAR || subtype == mime::STAR || kind == "" || subtype == "" {
        return None;
    }
    // Parsing the essence alone drops nothing a file type depends on.
    file_type(media_type.essence_str(), DetectedBy::ContentType)
}

/// Identifies a type from the extension of a filename, such as `snapshot.jpg`.
pub fn from_filename(name: &str) -> Option<FileType> {
    let (stem, extension) = name.rsplit_once('.')?;
    if stem.is_empty() || extension.is_empty() {
        return None;
    }
    let guess = mime_guess::from_ext(extension).first()?;
    file_type(guess.essence_str(), DetectedBy::Filename)
}

/// Returns whether `head` is UTF-8 text: valid UTF-8 (a character cut off at the end of
/// the head is allowed) without control characters other than tab, line feed, form feed,
/// carriage return and escape.
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // `error_len` is `None` when the input ends inside a character.
        Err(err) if err.error_len().is_none() => {
            std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\x0c' | '\r' | '\x1b'))
}

/// Builds a [`FileType`] for a specific media type, or `None` for an unspecific one.
fn file_type(media_type: &str, detected_by: DetectedBy) -> Option<FileType> {
    let media_type = media_type.to_ascii_lowercase();
    if UNSPECIFIC_TYPES.contains(&media_type.as_str()) || media_type.starts_with("inode/") {
        return None;
    }
    let media_type = canonical_media_type(&media_type).to_owned();
    let extension = extension_for(&media_type);
    Some(FileType {
        media_type,
        extension,
        detected_by,
    })
}

/// Finds the shared-mime-info `magic` file in the folders `tree_magic_mini` 3.2 reads:
/// `$TREE_MAGIC_DIR` alone when set, otherwise each folder of `$XDG_DATA_DIRS` (default
/// `/usr/local/share:/usr/share`) and `$XDG_DATA_HOME` (default `~/.local/share`).
fn find_shared_mime_info() -> Option<PathBuf> {
    use std::env::{split_paths, var_os};

    if let Some(folder) = var_os("TREE_MAGIC_DIR") {
        let path = PathBuf::from(folder).join("magic");
        return path.is_file().then_some(path);
    }
    let data_dirs = var_os("XDG_DATA_DIRS")
        .filter(|dirs| !dirs.is_empty())
        .unwrap_or_else(|| "/usr/local/share/:/usr/share/".into());
    let mut folders: Vec<PathBuf> = split_paths(&data_dirs).collect();
    let data_home = var_os("XDG_DATA_HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")));
    folders.extend(data_home);
    folders
        .into_iter()
        .map(|folder| folder.join("mime").join("magic"))
        .find(|path| path.is_file())
}

/// Returns at most 60 characters of `value`, for error messages.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    match value.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests;
