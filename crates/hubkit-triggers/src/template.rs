//! Payload templates for action steps, rendered with minijinja.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value as TemplateValue};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Number, Value};

use crate::Error;

/// The maximum fuel of one rendering, in minijinja's units of about one per engine instruction.
pub const MAX_TEMPLATE_FUEL: u64 = 1_000_000;

/// The maximum size of one rendering's output in bytes (1 MiB).
pub const MAX_TEMPLATE_OUTPUT: usize = 1 << 20;

/// The name under which the template is stored in its environment.
const TEMPLATE_NAME: &str = "template";

/// A compiled Jinja template that renders a step's HTTP body, URL, header, MQTT topic or
/// payload, or file line from a JSON context.
///
/// Undefined variables are errors, and every rendering is bounded by [`MAX_TEMPLATE_FUEL`]
/// and [`MAX_TEMPLATE_OUTPUT`]. There is no loader, and `include`, `import`, `extends` and
/// `macro` are syntax errors, so a template reads no files. Output is never auto-escaped, because payloads are JSON or plain text
/// and not HTML: use the `tojson` or `urlencode` filter where a value needs quoting.
/// Cloning is cheap because the compiled template is shared.
///
/// Numbers render as their digits. NOTE: a number that fits no integer type and has more
/// than 15 significant digits (or lies outside the f64 range) is text to arithmetic,
/// comparisons and `tojson`, which writes it as a JSON string.
#[derive(Clone)]
pub struct Template {
    environment: Arc<Environment<'static>>,
    source: Arc<str>,
}

impl Template {
    /// Compiles `source` with the hubkit template settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTemplate`] with the line and the problem when `source` is not valid
    /// template syntax.
    pub fn parse(source: &str) -> Result<Self, Error> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        // Debug mode puts the name of an undefined variable in the error. Release builds
        // turn it off by default, and their message is only "undefined value". It costs
        // a copy of the template source per error.
        environment.set_debug(true);
        environment.set_fuel(Some(MAX_TEMPLATE_FUEL));
        environment.set_auto_escape_callback(|_| minijinja::AutoEscape::None);

        environment
            .add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|err| Error::InvalidTemplate {
                line: err.line().unwrap_or(0),
                problem: describe(&err),
            })?;

        Ok(Self {
            environment: Arc::new(environment),
            source: Arc::from(source),
        })
    }

    /// Renders the template with the top-level keys of `context` as its variables.
    ///
    /// A context that is not a JSON object renders as if it had no variables.
    ///
    /// # Errors
    ///
    /// [`Error::RenderTemplate`] when the template reads an undefined variable or
    /// attribute, runs out of fuel or fails in a filter or operator, and
    /// [`Error::TemplateOutputTooLarge`] when the output would exceed
    /// [`MAX_TEMPLATE_OUTPUT`] bytes.
    pub fn render(&self, context: &Value) -> Result<String, Error> {
        let template = self
            .environment
            .get_template(TEMPLATE_NAME)
            .expect("Template::parse stores the template under TEMPLATE_NAME");
        let mut output = LimitedOutput::default();

        match template.render_captured_to(to_template_value(context), &mut output) {
            Ok(_) => {}
            Err(_) if output.exceeded => {
                return Err(Error::TemplateOutputTooLarge {
                    max: MAX_TEMPLATE_OUTPUT,
                });
            }
            Err(err) => {
                return Err(Error::RenderTemplate {
                    line: err.line().unwrap_or(0),
                    problem: describe(&err),
                });
            }
        }

        // The engine writes only `str` fragments, so the bytes are valid UTF-8.
        String::from_utf8(output.bytes).map_err(|_| Error::RenderTemplate {
            line: 0,
            problem: "output is not valid UTF-8".to_owned(),
        })
    }

    /// Returns the template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("source", &self.source())
            .finish()
    }
}

/// Returns minijinja's description of `err` without its location suffix.
fn describe(err: &minijinja::Error) -> String {
    let kind = err.kind().to_string();
    match err.detail() {
        None if err.kind() == ErrorKind::OutOfFuel => {
            format!("{kind} after {MAX_TEMPLATE_FUEL} units; loop over fewer items")
        }
        Some(detail) if err.kind() == ErrorKind::UndefinedError => detail.to_owned(),
        Some(detail) => format!("{kind}: {detail}"),
        None => kind,
    }
}

/// An output buffer that rejects writes past [`MAX_TEMPLATE_OUTPUT`] bytes, which stops the
/// rendering instead of building the whole output first.
#[derive(Default)]
struct LimitedOutput {
    bytes: Vec<u8>,
    exceeded: bool,
}

impl Write for LimitedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_TEMPLATE_OUTPUT {
            self.exceeded = true;
            return Err(io::Error::other("template output limit exceeded"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Converts a JSON value into a template value, keeping the order of object keys.
///
/// The conversion is written by hand instead of going through serde, because serde_json's
/// `arbitrary_precision` feature serialises a number as a one-entry map.
///
/// NOTE: Every render converts the whole context, so a run of a 300 KB record of numbers
/// uses tens of MB. Converting only the fields that a template reads would not.
fn to_template_value(value: &Value) -> TemplateValue {
    match value {
        Value::Null => TemplateValue::from(()),
        Value::Bool(flag) => TemplateValue::from(*flag),
        Value::Number(number) => number_value(number),
        Value::String(text) => TemplateValue::from(text.as_str()),
        Value::Array(items) => items.iter().map(to_template_value).collect(),
        Value::Object(map) => TemplateValue::from_pairs(
            map.iter()
                .map(|(key, value)| (key.as_str(), to_template_value(value))),
        ),
    }
}

/// Converts a JSON number into an integer or float template value when that keeps its
/// value, and otherwise into a [`NumberText`] that renders the digits as received.
fn number_value(number: &Number) -> TemplateValue {
    if let Some(integer) = number.as_i64() {
        return TemplateValue::from(integer);
    }
    if let Some(integer) = number.as_u64() {
        return TemplateValue::from(integer);
    }

    let text = number.to_string();
    let is_integer = !text.contains(['.', 'e', 'E']);
    if is_integer {
        if let Ok(integer) = text.parse::<i128>() {
            return TemplateValue::from(integer);
        }
        if let Ok(integer) = text.parse::<u128>() {
            return TemplateValue::from(integer);
        }
    } else if significant_digits(&text) <= f64::DIGITS as usize {
        // A decimal of at most 15 significant digits survives the round trip through f64.
        if let Some(float) = text.parse::<f64>().ok().filter(|float| float.is_finite()) {
            return TemplateValue::from(float);
        }
    }

    TemplateValue::from_object(NumberText(text))
}

/// Counts the significant digits of a JSON number's mantissa.
fn significant_digits(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

/// A JSON number that fits no integer type and no f64 without rounding, such as a 40-digit
/// id or `1e400`.
///
/// NOTE: it prints its digits, but arithmetic and comparisons treat it as text, and the
/// `tojson` filter writes it as a JSON string.
#[derive(Debug)]
struct NumberText(String);

impl Object for NumberText {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests;
