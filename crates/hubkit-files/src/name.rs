//! Names of stored files: the default `data-<timestamp>.<ext>` and names made safe from
//! a sender's filename.

use chrono::{DateTime, Utc};

use crate::detect::FileType;
use crate::extension::{FALLBACK, extension_matches};

/// Longest stored name in bytes. ext4, XFS and Btrfs allow 255; the rest leaves room for
/// the `-<n>` suffix that keeps names unique.
pub const MAX_NAME_BYTES: usize = 200;

/// Maximum extension length, in bytes, that is kept when an over-long name is shortened.
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// Characters that Windows, macOS or a shell treat specially in a file name. They are
/// replaced so that files stay usable when the folder is copied to another system.
const UNSAFE_CHARS: &[char] = &['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// Device names that Windows reserves whatever follows their first dot.
const WINDOWS_RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "com¹", "com²", "com³", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8",
    "lpt9", "lpt¹", "lpt²", "lpt³", "com0", "lpt0", "conin$", "conout$", "clock$",
];

/// Returns the default name of a file received at `received_at`:
/// `data-<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.<extension>`, in UTC, for example
/// `data-20261204T093015.123456789Z.jpg`.
pub fn default_name(received_at: DateTime<Utc>, extension: &str) -> String {
    format!(
        "data-{}.{extension}",
        received_at.format("%Y%m%dT%H%M%S.%9fZ")
    )
}

/// Makes a sender's filename safe to store as a file of `file_type`, or returns `None`
/// when nothing usable is left.
///
/// Keeps the base name only (the part after the last `/` or `\`). Control characters,
/// invisible format characters such as direction overrides and zero-width spaces, and
/// [`UNSAFE_CHARS`] become `_`. Leading dots become `_`, so the name is never `.`, `..` or
/// hidden. Windows device names get a leading `_`. A name whose extension does not fit the
/// detected type gets the type's extension appended, so `evil.html` holding a JPEG becomes
/// `evil.html.jpg`. Names over [`MAX_NAME_BYTES`] are shortened, keeping their extension.
pub fn safe_name(filename: &str, file_type: &FileType) -> Option<String> {
    let base = filename
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(filename)
        .trim();
    let mut name: String = base
        .chars()
        .map(|c| if is_unsafe(c) { '_' } else { c })
        .collect();
    let dots = name.len() - name.trim_start_matches('.').len();
    name.replace_range(..dots, &"_".repeat(dots));
    let name = name.trim_end_matches([' ', '.']).to_owned();
    if name.is_empty() || name.chars().all(|c| c == '_') && base.chars().all(|c| c != '_') {
        return None;
    }

    // A type without a known extension (`bin`) leaves the sender's extension alone.
    let unknown_type = file_type.extension == FALLBACK;
    let (mut stem, ext) = match split_extension(&name) {
        (stem, Some(ext)) if unknown_type || extension_matches(&file_type.media_type, ext) => {
            (stem.to_owned(), ext.to_owned())
        }
        _ => (name.clone(), file_type.extension.clone()),
    };
    let device = stem.split('.').next().unwrap_or_default().to_lowercase();
    if WINDOWS_RESERVED.contains(&device.trim_end()) {
        stem.insert(0, '_');
    }
    Some(shorten(&stem, &ext))
}

/// Returns `name` with `-<n>` before its extension, for the `n`th other name tried when a
/// file of that name exists: `snapshot.jpg` gives `snapshot-1.jpg`.
pub fn numbered_name(name: &str, n: u32) -> String {
    match split_extension(name) {
        (stem, Some(ext)) => format!("{stem}-{n}.{ext}"),
        (stem, None) => format!("{stem}-{n}"),
    }
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || UNSAFE_CHARS.contains(&c)
        // Invisible format characters: direction overrides and isolates (which make
        // `gpj.exe` display as `exe.jpg`), zero-width characters, line and paragraph
        // separators, the soft hyphen and the byte order mark.
        || matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{61c}'
                | '\u{115f}'..='\u{1160}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// Splits `name` at its last dot. A dot at the start or end is no extension separator.
fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    }
}

/// Joins `stem` and `ext`, shortening the stem (or, for a very long extension, the whole
/// name) to fit [`MAX_NAME_BYTES`] at a character boundary.
fn shorten(stem: &str, ext: &str) -> String {
    if ext.len() > MAX_KEPT_EXTENSION_BYTES {
        let joined = format!("{stem}.{ext}");
        return truncate(&joined, MAX_NAME_BYTES).to_owned();
    }
    let room = MAX_NAME_BYTES - ext.len() - 1;
    format!("{}.{ext}", truncate(stem, room))
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
