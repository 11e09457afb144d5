//! Conditions on one field of a record's `Data`.

use std::fmt;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::{Error, FieldPath};

/// The maximum length in bytes of a regular expression operand.
pub const MAX_REGEX_LEN: usize = 4096;

/// The maximum size in bytes of a compiled regular expression.
///
/// The regex crate's default is 10 MiB. A fifth of that bounds the memory of a trigger with a
/// hostile pattern such as `\w{1000}{1000}`, which is rejected when it is parsed.
///
/// NOTE: a Unicode class is large when compiled, so `\w{40}` fits but `\w{60}` is rejected.
/// `(?-u:\w)` or `[0-9A-Za-z_]` is a small ASCII-only class.
pub const REGEX_SIZE_LIMIT: usize = 2 << 20;

/// The maximum size in bytes of the lazy DFA cache of a regular expression, per thread that
/// matches it.
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// The maximum nesting depth of groups and repetitions in a regular expression.
pub const REGEX_NEST_LIMIT: u32 = 64;

/// A condition on one field of a record's `Data`.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The field that the operator reads.
    pub path: FieldPath,
    /// The test applied to the field's value.
    pub operator: Operator,
}

/// The test that a [`Condition`] applies to a field's value.
///
/// Numeric operators read a JSON number, or a string whose trimmed text parses as a number
/// (`"25.5"` from a query string). Both are converted to `f64`: a number too large for it
/// becomes an infinity, which still orders correctly against every finite operand. Booleans,
/// nulls, arrays, objects and other strings never match a numeric operator, not even `!=`.
///
/// Text operators read a string as it is, and a number or boolean as its JSON text (a number
/// keeps the digits it was received with, so `25.50` stays `"25.50"`). Nulls, arrays and
/// objects never match a text operator, not even a negated one. Text comparisons are
/// case-sensitive; a regular expression can turn that off with `(?i)`.
///
/// A missing field makes every operator false except [`Operator::Any`].
#[derive(Debug, Clone)]
pub enum Operator {
    /// Matches any value present at the path, including `null`; a missing field is false.
    Any,
    /// Compares the value as a number with the operand.
    Number(NumberOperator, f64),
    /// Matches a number from `min` to `max`, both ends included.
    Range {
        /// The lowest matching value.
        min: f64,
        /// The highest matching value.
        max: f64,
    },
    /// Compares the value's text with the operand.
    Text(TextOperator, String),
    /// Matches when the regular expression matches anywhere in the value's text; anchor it
    /// with `^` and `$` to match the whole text.
    Regex(Regex),
}

/// A comparison between a number and a numeric operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberOperator {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// A comparison between a value's text and a text operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOperator {
    /// `equals`: the whole text is the operand.
    Eq,
    /// `not_equals`
    Ne,
    /// `contains`
    Contains,
    /// `not_contains`
    NotContains,
    /// `starts_with`
    StartsWith,
    /// `not_starts_with`
    NotStartsWith,
    /// `ends_with`
    EndsWith,
    /// `not_ends_with`
    NotEndsWith,
}

impl Condition {
    /// Parses a condition from a field path, an operator name and its operands.
    ///
    /// # Errors
    ///
    /// The errors of [`FieldPath::parse`] and [`Operator::parse`].
    pub fn parse(path: &str, operator: &str, operands: &[&str]) -> Result<Self, Error> {
        Ok(Self {
            path: FieldPath::parse(path)?,
            operator: Operator::parse(operator, operands)?,
        })
    }

    /// Returns true when the field at the path exists and its value passes the operator.
    pub fn evaluate(&self, data: &Value) -> bool {
        match self.path.lookup(data) {
            Some(value) => self.operator.matches(value),
            None => false,
        }
    }
}

impl Operator {
    /// Parses an operator from its name and operands, as a configuration file writes them.
    ///
    /// Names are matched without regard to case, and `-` or a space may stand for `_`:
    ///
    /// - `any`, with no operand;
    /// - `=`, `!=`, `>`, `>=`, `<`, `<=`, with one numeric operand;
    /// - `range`, with two numeric operands, the minimum and the maximum;
    /// - `equals`, `not_equals`, `contains`, `not_contains`, `starts_with`,
    ///   `not_starts_with`, `ends_with`, `not_ends_with`, with one text operand;
    /// - `regex`, with one pattern in the syntax of the `regex` crate.
    ///
    /// Numeric operands are trimmed and must be finite. A regular expression is compiled
    /// here, once, within [`MAX_REGEX_LEN`], [`REGEX_SIZE_LIMIT`], [`REGEX_DFA_SIZE_LIMIT`]
    /// and [`REGEX_NEST_LIMIT`], so a hostile pattern cannot use much memory.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownOperator`], [`Error::OperandCount`], [`Error::InvalidNumber`],
    /// [`Error::InvalidRange`], [`Error::RegexTooLong`] or [`Error::InvalidRegex`].
    pub fn parse(name: &str, operands: &[&str]) -> Result<Self, Error> {
        let normalized = name.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let expected = match normalized.as_str() {
            "any" => "no operand",
            "range" => "2 operands, the minimum and the maximum",
            _ => "1 operand",
        };
        let count = match normalized.as_str() {
            "any" => 0,
            "range" => 2,
            _ => 1,
        };

        let number_operator = match normalized.as_str() {
            "=" => Some(NumberOperator::Eq),
            "!=" => Some(NumberOperator::Ne),
            ">" => Some(NumberOperator::Gt),
            ">=" => Some(NumberOperator::Ge),
            "<" => Some(NumberOperator::Lt),
            "<=" => Some(NumberOperator::Le),
            _ => None,
        };
        let text_operator = match normalized.as_str() {
            "equals" => Some(TextOperator::Eq),
            "not_equals" => Some(TextOperator::Ne),
            "contains" => Some(TextOperator::Contains),
            "not_contains" => Some(TextOperator::NotContains),
            "starts_with" => Some(TextOperator::StartsWith),
            "not_starts_with" => Some(TextOperator::NotStartsWith),
            "ends_with" => Some(TextOperator::EndsWith),
            "not_ends_with" => Some(TextOperator::NotEndsWith),
            _ => None,
        };
        let known = normalized == "any" || normalized == "range" || normalized == "regex";
        if !known && number_operator.is_none() && text_operator.is_none() {
            return Err(Error::UnknownOperator {
                name: name.to_owned(),
            });
        }

        if operands.len() != count {
            return Err(Error::OperandCount {
                operator: name.to_owned(),
                expected,
                count: operands.len(),
            });
        }

        if let Some(operator) = number_operator {
            return Ok(Self::Number(operator, parse_operand(name, operands[0])?));
        }
        if let Some(operator) = text_operator {
            return Ok(Self::Text(operator, operands[0].to_owned()));
        }
        match normalized.as_str() {
            "range" => parse_range(name, operands[0], operands[1]),
            "regex" => compile_regex(operands[0]).map(Self::Regex),
            _ => Ok(Self::Any),
        }
    }

    /// Returns true when `value` passes this operator.
    pub fn matches(&self, value: &Value) -> bool {
        match self {
            Self::Any => true,
            Self::Number(operator, operand) => {
                number_of(value).is_some_and(|number| operator.compare(number, *operand))
            }
            Self::Range { min, max } => {
                number_of(value).is_some_and(|number| *min <= number && number <= *max)
            }
            Self::Text(operator, operand) => {
                text_of(value).is_some_and(|text| operator.compare(&text, operand))
            }
            Self::Regex(regex) => text_of(value).is_some_and(|text| regex.is_match(&text)),
        }
    }
}

impl NumberOperator {
    fn compare(self, value: f64, operand: f64) -> bool {
        match self {
            Self::Eq => value == operand,
            Self::Ne => value != operand,
            Self::Gt => value > operand,
            Self::Ge => value >= operand,
            Self::Lt => value < operand,
            Self::Le => value <= operand,
        }
    }
}

impl TextOperator {
    fn compare(self, text: &str, operand: &str) -> bool {
        match self {
            Self::Eq => text == operand,
            Self::Ne => text != operand,
            Self::Contains => text.contains(operand),
            Self::NotContains => !text.contains(operand),
            Self::StartsWith => text.starts_with(operand),
            Self::NotStartsWith => !text.starts_with(operand),
            Self::EndsWith => text.ends_with(operand),
            Self::NotEndsWith => !text.ends_with(operand),
        }
    }
}

impl fmt::Display for NumberOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        })
    }
}

impl fmt::Display for TextOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "equals",
            Self::Ne => "not_equals",
            Self::Contains => "contains",
            Self::NotContains => "not_contains",
            Self::StartsWith => "starts_with",
            Self::NotStartsWith => "not_starts_with",
            Self::EndsWith => "ends_with",
            Self::NotEndsWith => "not_ends_with",
        })
    }
}

fn parse_range(name: &str, min: &str, max: &str) -> Result<Operator, Error> {
    let min = parse_operand(name, min)?;
    let max = parse_operand(name, max)?;
    if min > max {
        return Err(Error::InvalidRange { min, max });
    }
    Ok(Operator::Range { min, max })
}

fn parse_operand(operator: &str, operand: &str) -> Result<f64, Error> {
    parse_number(operand)
        .filter(|number| number.is_finite())
        .ok_or_else(|| Error::InvalidNumber {
            operator: operator.to_owned(),
            operand: operand.to_owned(),
        })
}

fn compile_regex(pattern: &str) -> Result<Regex, Error> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(Error::RegexTooLong {
            len: pattern.len(),
            max: MAX_REGEX_LEN,
        });
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|source| Error::InvalidRegex {
            pattern: pattern.to_owned(),
            source,
        })
}

/// Reads a JSON number, or a string holding one, as an `f64`.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        // With serde_json's arbitrary_precision the text is the number as received, so an
        // exponent past f64's range (1e400) parses to an infinity instead of failing.
        Value::Number(number) => parse_number(&number.to_string()),
        Value::String(text) => parse_number(text),
        _ => None,
    }
}

/// Parses decimal text such as `25.5`, `-3`, `1e3` or ` 7 ` into an `f64`.
///
/// Text without a digit is rejected, which keeps out the words that Rust's parser accepts
/// (`inf`, `NaN`, `infinity`), so a NaN never reaches a comparison.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|number| !number.is_nan())
}

/// Returns the text that text operators compare: a string itself, or a number's or
/// boolean's JSON text.
fn text_of(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(text) => Some(text.as_str().into()),
        Value::Number(number) => Some(number.to_string().into()),
        Value::Bool(flag) => Some(if *flag { "true" } else { "false" }.into()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests;
