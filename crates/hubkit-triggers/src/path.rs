//! Field paths into a record's `Data`.

use std::fmt;

use serde_json::Value;

use crate::Error;

/// The field of a record's `Data` that a condition reads.
///
/// Three spellings are accepted:
///
/// - the empty string, which names the whole `Data`;
/// - a JSON pointer (RFC 6901) starting with `/`, such as `/a/b/0`, where `~1` stands for
///   `/` and `~0` for `~` inside a key;
/// - a dotted path such as `a.b.0`, whose segments must not be empty. A key that contains
///   a dot can only be named with a JSON pointer.
///
/// In both forms a segment applied to an array is an index (`0`, `12`, without leading
/// zeros), and applied to an object it is a key, so `a.0` reads key `"0"` of an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Returns the path that names the whole `Data`.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses a JSON pointer, a dotted path or the empty string.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFieldPath`] for a pointer with a `~` not followed by `0` or `1`, and
    /// for a dotted path with an empty segment (`a..b`, `.a`, `a.`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let segments = if text.is_empty() {
            Vec::new()
        } else if let Some(pointer) = text.strip_prefix('/') {
            pointer
                .split('/')
                .map(|segment| unescape_pointer_segment(text, segment))
                .collect::<Result<_, _>>()?
        } else {
            let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
            if segments.iter().any(String::is_empty) {
                return Err(Error::InvalidFieldPath {
                    path: text.to_owned(),
                    rule: "a dotted path must not have empty segments; \
                           use a JSON pointer starting with / for unusual keys",
                });
            }
            segments
        };

        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Returns the path as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Returns the keys and indexes in order, with pointer escapes resolved.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Returns true for the path that names the whole `Data`.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Finds the field in `data`, or returns `None` when a segment names no field.
    pub fn lookup<'a>(&self, data: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(data, |value, segment| match value {
                Value::Object(map) => map.get(segment.as_str()),
                Value::Array(items) => parse_index(segment).and_then(|index| items.get(index)),
                _ => None,
            })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Resolves `~1` to `/` and `~0` to `~`, in that order as RFC 6901 requires.
fn unescape_pointer_segment(path: &str, segment: &str) -> Result<String, Error> {
    let mut unescaped = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            unescaped.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => unescaped.push('~'),
            Some('1') => unescaped.push('/'),
            _ => {
                return Err(Error::InvalidFieldPath {
                    path: path.to_owned(),
                    rule: "in a JSON pointer, ~ must be followed by 0 (for ~) or 1 (for /)",
                });
            }
        }
    }
    Ok(unescaped)
}

/// Parses an array index as RFC 6901 spells it: `0`, or digits without a leading zero.
fn parse_index(segment: &str) -> Option<usize> {
    let digits_only = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (segment.len() > 1 && segment.starts_with('0')) {
        return None;
    }
    segment.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parse_forms_give_segments() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("/", &[""]),
            ("/a/b/0", &["a", "b", "0"]),
            ("/a~1b/c~0d", &["a/b", "c~d"]),
            ("/~01", &["~1"]),
            ("a.b.0", &["a", "b", "0"]),
            ("temperature", &["temperature"]),
        ];
        for (text, expected) in cases {
            let path = FieldPath::parse(text).unwrap();
            assert_eq!(path.segments(), *expected, "path {text:?}");
            assert_eq!(path.as_str(), *text);
        }
    }

    #[test]
    fn parse_rejects_bad_paths() {
        for text in ["a..b", ".a", "a.", ".", "/a~2", "/a~"] {
            let err = FieldPath::parse(text).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidFieldPath { path, .. } if path == text),
                "path {text:?} gave {err:?}"
            );
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn lookup_nested_and_arrays() {
        let data = json!({
            "a": {"b": [10, {"c": "x"}]},
            "0": "zero-key",
            "a/b": 1,
            "m~n": 2,
            "list": ["first"],
        });
        let cases = [
            ("", Some(&data)),
            ("a.b.0", Some(&json!(10))),
            ("/a/b/1/c", Some(&json!("x"))),
            ("a.b.1.c", Some(&json!("x"))),
            ("0", Some(&json!("zero-key"))),
            ("/a~1b", Some(&json!(1))),
            ("/m~0n", Some(&json!(2))),
            ("list.0", Some(&json!("first"))),
            ("list.1", None),
            ("list.00", None),
            ("list.-", None),
            ("list.+0", None),
            ("a.b.0.x", None),
            ("missing", None),
            ("a.missing.c", None),
        ];
        for (text, expected) in cases {
            let path = FieldPath::parse(text).unwrap();
            assert_eq!(path.lookup(&data), expected, "path {text:?}");
        }
    }

    #[test]
    fn root_is_empty_path() {
        let root = FieldPath::root();
        assert!(root.is_root());
        assert_eq!(root, FieldPath::parse("").unwrap());
        assert_eq!(root.lookup(&json!(5)), Some(&json!(5)));
    }
}
