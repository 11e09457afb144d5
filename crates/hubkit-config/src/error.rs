use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a configuration file, with its position and the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the configuration file, as given to [`load`](crate::load) or
    /// [`parse`](crate::parse).
    pub file: PathBuf,
    /// 1-based line, or 0 when the error has no position (an unreadable file).
    pub line: usize,
    /// 1-based column in characters, or 0 when the error has no position.
    pub column: usize,
    /// Dotted path of the key, such as `webhooks[1].custom_path`; empty for syntax errors.
    pub field: String,
    /// Description of the problem, naming the value and the rule.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in a configuration file, sorted by position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// Returns the errors, sorted by line and column.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Returns the errors as a vector.
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }

    /// Returns the number of errors, which is at least 1.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns whether there are no errors, which never holds for a value returned by
    /// [`load`](crate::load) or [`parse`](crate::parse).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// A setting that is valid but probably not what the operator wants in production.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Path of the configuration file.
    pub file: PathBuf,
    /// 1-based line of the key the warning concerns.
    pub line: usize,
    /// Dotted path of the key, such as `webhooks[1].auth.password`.
    pub field: String,
    /// Description of the risk and of the fix.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.field,
            self.message
        )
    }
}

/// Converts byte offsets of the file text into 1-based lines and columns.
struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(offset, _)| offset + 1));
        LineIndex { text, line_starts }
    }

    /// Returns the 1-based line and character column of `offset`, clamped to the text.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }
}

/// Collector of the errors and warnings found while reading one file.
pub(crate) struct Report<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        Report {
            file,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error at the start of `span`.
    pub(crate) fn error(&mut self, span: Range<usize>, field: &str, message: String) {
        let (line, column) = self.lines.position(span.start);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            field: field.to_owned(),
            message,
        });
    }

    /// Records a warning at the line where `span` starts.
    pub(crate) fn warning(&mut self, span: Range<usize>, field: &str, message: String) {
        let (line, _) = self.lines.position(span.start);
        self.warnings.push(ConfigWarning {
            file: self.file.to_path_buf(),
            line,
            field: field.to_owned(),
            message,
        });
    }

    /// Returns the number of errors recorded so far.
    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Returns the warnings sorted by line, or every error sorted by position if there
    /// is any.
    pub(crate) fn finish(self) -> Result<Vec<ConfigWarning>, ConfigErrors> {
        if self.errors.is_empty() {
            let mut warnings = self.warnings;
            warnings.sort_by_key(|warning| warning.line);
            return Ok(warnings);
        }
        let mut errors = self.errors;
        errors.sort_by_key(|error| (error.line, error.column));
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_is_one_based() {
        let lines = LineIndex::new("ab\ncd\n");
        let cases = [
            (0, (1, 1)),
            (1, (1, 2)),
            (3, (2, 1)),
            (4, (2, 2)),
            (6, (3, 1)),
        ];
        for (offset, expected) in cases {
            assert_eq!(lines.position(offset), expected, "offset {offset}");
        }
    }

    #[test]
    fn position_counts_characters() {
        let lines = LineIndex::new("name = \"Büro\" x");
        assert_eq!(lines.position(14), (1, 14));
    }

    #[test]
    fn position_clamps_past_end() {
        let lines = LineIndex::new("a\n");
        assert_eq!(lines.position(99), (2, 1));
    }

    #[test]
    fn error_display_has_position_and_field() {
        let error = ConfigError {
            file: PathBuf::from("hubkit.toml"),
            line: 12,
            column: 15,
            field: "webhooks[1].custom_path".into(),
            message: "bad".into(),
        };
        assert_eq!(
            error.to_string(),
            "hubkit.toml:12:15: webhooks[1].custom_path: bad"
        );
    }

    #[test]
    fn error_display_without_position() {
        let error = ConfigError {
            file: PathBuf::from("missing.toml"),
            line: 0,
            column: 0,
            field: String::new(),
            message: "cannot read".into(),
        };
        assert_eq!(error.to_string(), "missing.toml: cannot read");
    }
}
