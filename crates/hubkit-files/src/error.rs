use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A `Content-Disposition` value that breaks RFC 6266.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispositionError {
    /// The value does not start with a disposition type such as `attachment`.
    #[error(
        "invalid Content-Disposition: the disposition type is missing; start with a type \
         such as attachment, as in `attachment; filename=\"photo.jpg\"`"
    )]
    MissingType,
    /// Something other than `;` follows a type or parameter.
    #[error("invalid Content-Disposition: expected `;` at byte {at} between parameters")]
    ExpectedSemicolon {
        /// Byte offset in the header value.
        at: usize,
    },
    /// A `;` is followed by no parameter name.
    #[error("invalid Content-Disposition: expected a parameter name at byte {at}")]
    ExpectedParameter {
        /// Byte offset in the header value.
        at: usize,
    },
    /// A parameter has no value.
    #[error("invalid Content-Disposition: parameter `{name}` has no `=` and value")]
    MissingEquals {
        /// The parameter name, in lower case.
        name: String,
    },
    /// A quoted value has no closing quote.
    #[error("invalid Content-Disposition: the quoted value of `{name}` is unterminated")]
    UnterminatedQuote {
        /// The parameter name, in lower case.
        name: String,
    },
    /// A `filename*` value that is not an RFC 8187 `ext-value`.
    #[error("invalid Content-Disposition: filename* value {value:?} is invalid because {reason}")]
    InvalidExtendedValue {
        /// The value, shortened.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// `filename` or `filename*` appears twice, which RFC 6266 forbids because the two
    /// could name different files.
    #[error("invalid Content-Disposition: parameter `{name}` appears more than once; send it once")]
    Repeated {
        /// The parameter name, in lower case.
        name: String,
    },
}

/// A failure to store an uploaded file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileError {
    /// The owner is not a safe single folder name.
    #[error("invalid file owner {owner:?}: use letters, digits, `-` and `_` only")]
    InvalidOwner {
        /// The rejected owner.
        owner: String,
    },
    /// The body is larger than the upload's limit.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A folder could not be created or synced.
    #[error("failed to prepare folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing, syncing or naming the file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// The failed operation, such as `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Every numbered variant of the name is taken.
    #[error("every name from {name:?} to its variant -{tries} exists in {}", folder.display())]
    NamesExhausted {
        /// The name first tried.
        name: String,
        /// How many numbered variants were tried.
        tries: u32,
        /// The folder.
        folder: PathBuf,
    },
    /// The background writer stopped before the upload finished.
    #[error("the file writer task stopped unexpectedly")]
    WriterStopped,
}

impl FileError {
    /// Returns whether the failure is a full disk or exhausted quota.
    pub fn is_storage_full(&self) -> bool {
        let source = match self {
            FileError::Folder { source, .. } | FileError::Io { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    }
}

/// A relative path of a stored file that breaks the layout's rules.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid file path {path:?}: {reason}")]
pub struct PathError {
    /// The path, shortened.
    pub path: String,
    /// The rule it breaks.
    pub reason: &'static str,
}
