//! The file extension of a media type.

/// Preferred extensions of common media types, including the aliases that devices and
/// the signature libraries use. Types missing here take the first extension that
/// `mime_guess` lists for them.
const PREFERRED: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/pjpeg", "jpg"),
    ("image/png", "png"),
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
    ("application/gzip", "gz"),
    ("application/x-gzip", "gz"),
    ("application/x-tar", "tar"),
    ("application/x-7z-compressed", "7z"),
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
pub fn extension_for(media_type: &str) -> String {
    if let Some((_, extension)) = PREFERRED.iter().find(|(known, _)| *known == media_type) {
        return (*extension).to_owned();
    }
    mime_guess::get_mime_extensions_str(media_type)
        .and_then(|extensions| extensions.first())
        .map_or_else(|| FALLBACK.to_owned(), |extension| (*extension).to_owned())
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
    fn unknown_type_gets_bin() {
        assert_eq!(extension_for("application/x-hubkit-unknown"), "bin");
    }
}
