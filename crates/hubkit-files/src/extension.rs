//! The file extension of a media type.

/// Preferred extensions of common media types, including the aliases that devices and
/// the signature libraries use. Types missing here take the first extension that
/// `mime_guess` lists for them.
const PREFERRED: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/jpg", "jpg"),
    ("image/pjpeg", "jpg"),
    ("image/png", "png"),
    ("image/x-png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/bmp", "bmp"),
    ("image/x-bmp", "bmp"),
    ("image/x-ms-bmp", "bmp"),
    ("image/tiff", "tiff"),
    ("image/heic", "heic"),
    ("image/heif", "heif"),
    ("image/avif", "avif"),
    ("image/svg+xml", "svg"),
    ("image/x-icon", "ico"),
    ("image/vnd.microsoft.icon", "ico"),
    ("audio/wav", "wav"),
    ("audio/wave", "wav"),
    ("audio/x-wav", "wav"),
    ("audio/vnd.wave", "wav"),
    ("audio/mpeg", "mp3"),
    ("audio/mp3", "mp3"),
    ("audio/mpeg3", "mp3"),
    ("audio/x-mpeg", "mp3"),
    ("audio/x-mp3", "mp3"),
    ("audio/ogg", "ogg"),
    ("audio/x-vorbis+ogg", "ogg"),
    ("audio/opus", "opus"),
    ("audio/x-opus+ogg", "opus"),
    ("audio/aac", "aac"),
    ("audio/mp4", "m4a"),
    ("audio/x-m4a", "m4a"),
    ("audio/flac", "flac"),
    ("audio/x-flac", "flac"),
    ("audio/amr", "amr"),
    ("audio/webm", "weba"),
    ("video/mp4", "mp4"),
    ("video/x-m4v", "m4v"),
    ("video/quicktime", "mov"),
    ("video/webm", "webm"),
    ("video/x-matroska", "mkv"),
    ("video/x-msvideo", "avi"),
    ("video/avi", "avi"),
    ("video/mpeg", "mpg"),
    ("video/mp2t", "ts"),
    ("video/ogg", "ogv"),
    ("video/3gpp", "3gp"),
    ("application/ogg", "ogg"),
    ("application/pdf", "pdf"),
    ("application/zip", "zip"),
    ("application/x-zip", "zip"),
    ("application/x-zip-compressed", "zip"),
    ("application/gzip", "gz"),
    ("application/x-gzip", "gz"),
    ("application/x-tar", "tar"),
    ("application/x-7z-compressed", "7z"),
    ("application/x-msdownload", "exe"),
    ("application/vnd.microsoft.portable-executable", "exe"),
    ("application/vnd.ms-excel", "xls"),
    ("application/msword", "doc"),
    ("application/json", "json"),
    ("application/xml", "xml"),
    ("text/xml", "xml"),
    ("text/plain", "txt"),
    ("text/csv", "csv"),
    ("text/html", "html"),
];

/// Extension of types that neither table lists.
const FALLBACK: &str = "bin";

/// Returns the file extension, without the dot, for a lower-case media type without
/// parameters: `image/jpeg` gives `jpg`, `audio/wav` gives `wav`, and an unknown type
/// gives `bin`.
///
/// `mime_guess` lists a type's extensions in alphabetical order, so among them the one
/// that equals the subtype (without an `x-` prefix) is preferred, then the first.
pub fn extension_for(media_type: &str) -> String {
    if let Some((_, extension)) = PREFERRED.iter().find(|(known, _)| *known == media_type) {
        return (*extension).to_owned();
    }
    let Some(extensions) = mime_guess::get_mime_extensions_str(media_type) else {
        return FALLBACK.to_owned();
    };
    let subtype = media_type.split('/').nth(1).unwrap_or_default();
    let subtype = subtype.strip_prefix("x-").unwrap_or(subtype);
    extensions
        .iter()
        .find(|extension| **extension == subtype)
        .or_else(|| extensions.first())
        .map_or_else(|| FALLBACK.to_owned(), |extension| (*extension).to_owned())
}

/// Returns whether a file named with `extension` (without the dot, any case) may hold
/// content of `media_type`: the extension is the type's preferred one, one that
/// `mime_guess` lists for the type, or one whose `mime_guess` types include it.
pub fn extension_matches(media_type: &str, extension: &str) -> bool {
    let extension = extension.to_ascii_lowercase();
    if extension_for(media_type) == extension {
        return true;
    }
    if PREFERRED
        .iter()
        .any(|(known, preferred)| *known == media_type && *preferred == extension)
    {
        return true;
    }
    let listed = mime_guess::get_mime_extensions_str(media_type)
        .is_some_and(|extensions| extensions.contains(&extension.as_str()));
    listed
        || mime_guess::from_ext(&extension)
            .iter()
            .any(|guess| guess.essence_str() == media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_use_preferred_extension() {
        for (media_type, expected) in [
            ("image/jpeg", "jpg"),
            ("audio/wav", "wav"),
            ("audio/x-wav", "wav"),
            ("image/tiff", "tiff"),
            ("audio/mpeg", "mp3"),
            ("video/mp4", "mp4"),
            ("video/x-m4v", "m4v"),
        ] {
            assert_eq!(extension_for(media_type), expected, "{media_type}");
        }
    }

    #[test]
    fn other_types_use_mime_guess() {
        assert_eq!(
            extension_for("application/vnd.oasis.opendocument.text"),
            "odt"
        );
    }

    #[test]
    fn aliases_use_preferred_extension() {
        for (media_type, expected) in [
            ("image/jpg", "jpg"),
            ("image/x-png", "png"),
            ("application/x-zip-compressed", "zip"),
            ("application/x-msdownload", "exe"),
        ] {
            assert_eq!(extension_for(media_type), expected, "{media_type}");
        }
    }

    #[test]
    fn extension_matching() {
        assert!(extension_matches("image/jpeg", "jpg"));
        assert!(extension_matches("image/jpeg", "JPEG"));
        assert!(extension_matches("application/gzip", "gz"));
        assert!(extension_matches("audio/x-wav", "wav"));
        assert!(!extension_matches("image/jpeg", "html"));
        assert!(!extension_matches("image/jpeg", "png"));
        assert!(!extension_matches("image/jpeg", "ini"));
    }

    #[test]
    fn unknown_type_gets_bin() {
        assert_eq!(extension_for("application/x-hubkit-unknown"), "bin");
    }
}
