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

/// Unregistered or legacy names of media types, with the registered name that records
/// use instead. Devices and the signature libraries send the names on the left.
const ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("image/x-png", "image/png"),
    ("image/x-bmp", "image/bmp"),
    ("image/x-ms-bmp", "image/bmp"),
    ("image/x-tiff", "image/tiff"),
    ("image/x-icon", "image/vnd.microsoft.icon"),
    ("image/vnd.mozilla.apng", "image/apng"),
    ("audio/x-wav", "audio/wav"),
    ("audio/wave", "audio/wav"),
    ("audio/vnd.wave", "audio/wav"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/mpeg3", "audio/mpeg"),
    ("audio/x-mpeg", "audio/mpeg"),
    ("audio/x-mp3", "audio/mpeg"),
    ("audio/x-aac", "audio/aac"),
    ("audio/x-ogg", "audio/ogg"),
    ("audio/x-flac", "audio/flac"),
    ("audio/x-m4a", "audio/mp4"),
    ("audio/x-aiff", "audio/aiff"),
    ("video/avi", "video/x-msvideo"),
    ("application/x-pdf", "application/pdf"),
    ("application/x-zip", "application/zip"),
    ("application/x-zip-compressed", "application/zip"),
    ("application/x-gzip", "application/gzip"),
    ("text/xml", "application/xml"),
];

/// Extensions that commonly hold a type besides its preferred one, which `mime_guess`
/// does not list for it.
const ALSO_FITS: &[(&str, &str)] = &[
    ("audio/opus", "ogg"),
    ("audio/ogg", "opus"),
    ("audio/ogg", "oga"),
    ("video/mp4", "m4v"),
    ("application/gzip", "tgz"),
    ("audio/aiff", "aif"),
    ("image/apng", "png"),
];

/// Extension of types that neither table lists.
pub(crate) const FALLBACK: &str = "bin";

/// Returns the registered name of a lower-case media type: `image/jpg` gives
/// `image/jpeg`, and a name without an alias is returned unchanged.
pub fn canonical_media_type(media_type: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == media_type)
        .map_or(media_type, |(_, canonical)| canonical)
}

/// Returns the file extension, without the dot, for a lower-case media type without
/// parameters: `image/jpeg` gives `jpg`, `audio/wav` gives `wav`, and an unknown type
/// gives `bin`.
///
/// `mime_guess` lists a type's extensions in alphabetical order, so among them the one
/// that equals the subtype (without an `x-` prefix) is preferred, then the first.
pub fn extension_for(media_type: &str) -> String {
    let media_type = canonical_media_type(media_type);
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
    let media_type = canonical_media_type(media_type);
    let extension = extension.to_ascii_lowercase();
    if extension_for(media_type) == extension {
        return true;
    }
    if ALSO_FITS
        .iter()
        .any(|(known, fits)| *known == media_type && *fits == extension)
    {
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
            .any(|guess| canonical_media_type(guess.essence_str()) == media_type)
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
        assert!(extension_matches("image/jpg", "jpeg"));
        assert!(extension_matches("audio/opus", "ogg"));
        assert!(extension_matches("video/mp4", "m4v"));
        assert!(extension_matches("application/gzip", "tgz"));
        assert!(extension_matches("application/x-pdf", "pdf"));
    }

    #[test]
    fn aliases_have_canonical_names() {
        assert_eq!(canonical_media_type("image/jpg"), "image/jpeg");
        assert_eq!(canonical_media_type("audio/x-wav"), "audio/wav");
        assert_eq!(canonical_media_type("image/png"), "image/png");
        assert_eq!(extension_for("application/x-pdf"), "pdf");
        assert_eq!(extension_for("image/x-tiff"), "tiff");
    }

    #[test]
    fn unknown_type_gets_bin() {
        assert_eq!(extension_for("application/x-hubkit-unknown"), "bin");
    }
}
