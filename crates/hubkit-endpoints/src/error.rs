/// Maximum number of characters of a configured value that an error message repeats.
const EXCERPT_CHARS: usize = 60;

/// Error returned when a webhook's configuration is invalid or a password cannot be
/// hashed.
///
/// Messages name the value they concern first, so they read well after a location
/// prefix such as `hubkit.toml:12: webhooks[0].custom_path: `. They never contain a
/// password or a password hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The custom path is shorter than 8 or longer than 1000 characters.
    #[error("custom path {path:?} is {length} characters; it must be 8 to 1000")]
    PathLength {
        /// Path, shortened to 60 characters.
        path: String,
        /// Length of the path in characters.
        length: usize,
    },

    /// The custom path contains a character other than `A-Z a-z 0-9 - _ /`.
    #[error(
        "custom path {path:?} contains {character} at position {position}; \
         use only A-Z, a-z, 0-9, '-', '_' and '/'",
        character = describe_char(*character)
    )]
    PathCharacter {
        /// Path, shortened to 60 characters.
        path: String,
        /// First character that is not allowed.
        character: char,
        /// Position of that character, from 1.
        position: usize,
    },

    /// The custom path starts with `/`.
    #[error(
        "custom path {path:?} starts with '/'; remove it, \
         because clients and proxies may merge it with the slash before it"
    )]
    PathLeadingSlash {
        /// Path, shortened to 60 characters.
        path: String,
    },

    /// The custom path ends with `/`.
    #[error(
        "custom path {path:?} ends with '/'; remove it, \
         because clients and proxies may add or drop a trailing slash"
    )]
    PathTrailingSlash {
        /// Path, shortened to 60 characters.
        path: String,
    },

    /// The custom path contains `//`, an empty segment.
    #[error(
        "custom path {path:?} contains '//' at position {position}; use single slashes, \
         because clients and proxies may merge them"
    )]
    PathEmptySegment {
        /// Path, shortened to 60 characters.
        path: String,
        /// Position of the first of the two slashes, from 1.
        position: usize,
    },

    /// The Basic authentication username is shorter than 4 characters.
    #[error("username {username:?} is {length} characters; it must be at least 4")]
    UsernameLength {
        /// Username, shortened to 60 characters.
        username: String,
        /// Length of the username in characters.
        length: usize,
    },

    /// The username contains `:`, which Basic authentication cannot carry.
    #[error(
        "username {username:?} contains ':'; remove it, because Basic authentication \
         (RFC 7617) ends the username at the first ':'"
    )]
    UsernameColon {
        /// Username, shortened to 60 characters.
        username: String,
    },

    /// The username contains a control character.
    #[error(
        "username contains the control character {character:?} at position {position}; \
         remove it"
    )]
    UsernameControl {
        /// Control character found.
        character: char,
        /// Position of that character, from 1.
        position: usize,
    },

    /// A clear-text password is shorter than 8 characters.
    #[error("password is shorter than 8 characters; use at least 8")]
    PasswordLength,

    /// A password hash is not a valid argon2 PHC string.
    #[error(
        "password hash is not a valid PHC string: {reason}; use an argon2 PHC string \
         such as the output of `hubkitd hash-password`"
    )]
    InvalidPasswordHash {
        /// Parser message, which never contains the hash.
        reason: String,
    },

    /// A password hash names an algorithm other than argon2.
    #[error("password hash uses algorithm {algorithm:?}; it must be argon2id, argon2i or argon2d")]
    UnsupportedPasswordHash {
        /// Algorithm identifier from the PHC string.
        algorithm: String,
    },

    /// A webhook name is empty or only whitespace.
    #[error("webhook name is empty or only whitespace; give each webhook a unique name")]
    EmptyName,

    /// Two webhooks have the same name.
    #[error("webhook name {name:?} is used twice; each webhook name must be unique")]
    DuplicateName {
        /// Repeated name, shortened to 60 characters.
        name: String,
    },

    /// Two webhooks have the same custom path.
    #[error(
        "custom path {path:?} is used by webhooks {first:?} and {second:?}; \
         each custom path must be unique"
    )]
    DuplicatePath {
        /// Repeated path, shortened to 60 characters.
        path: String,
        /// Name of the first webhook with the path, shortened to 60 characters.
        first: String,
        /// Name of the second webhook with the path, shortened to 60 characters.
        second: String,
    },

    /// Two webhook names derive the same short id.
    #[error(
        "webhooks {first:?} and {second:?} derive the same short id {short_id}; \
         rename one of them"
    )]
    DuplicateShortId {
        /// Short id that both names derive.
        short_id: String,
        /// Name of the first webhook, shortened to 60 characters.
        first: String,
        /// Name of the second webhook, shortened to 60 characters.
        second: String,
    },

    /// A webhook's authentication settings are invalid.
    #[error("webhook {name:?}: {source}")]
    InvalidWebhook {
        /// Name of the webhook, shortened to 60 characters.
        name: String,
        /// Validation error of the setting.
        source: Box<EndpointError>,
    },

    /// The operating system's random number generator failed.
    #[error("operating system random number generator failed: {reason}")]
    RandomUnavailable {
        /// Error reported by the `getrandom` crate.
        reason: String,
    },

    /// Argon2 failed to hash a password.
    #[error("password hashing failed: {reason}")]
    Hashing {
        /// Error reported by the `argon2` crate.
        reason: String,
    },
}

/// Returns `value` cut to [`EXCERPT_CHARS`] characters, with "..." appended when cut.
pub(crate) fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

/// Names a character for an error message, spelling out the ones that are hard to see.
fn describe_char(character: char) -> String {
    match character {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        other => format!("{other:?}"),
    }
}
