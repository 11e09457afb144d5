//! Payload templates for action steps, rendered with minijinja.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as TemplateValue};
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
/// than 17 significant digits (or lies outside the f64 range) is text to arithmetic,
/// comparisons, `float` and `tojson`, which writes it as a JSON string.
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
        let root = match context {
            Value::Object(_) => {
                TemplateValue::from_object(JsonView::root(Arc::new(context.clone())))
            }
            _ => TemplateValue::from_iter(std::iter::empty::<(&str, TemplateValue)>()),
        };
        self.render_value(root)
    }

    /// Renders the template with the variables of an action step: see [`StepContext`].
    /// Unlike [`Template::render`], it copies nothing of the context.
    ///
    /// # Errors
    ///
    /// As [`Template::render`].
    pub fn render_step(&self, context: &StepContext) -> Result<String, Error> {
        self.render_value(TemplateValue::from_object(context.clone()))
    }

    fn render_value(&self, context: TemplateValue) -> Result<String, Error> {
        let template = self
            .environment
            .get_template(TEMPLATE_NAME)
            .expect("Template::parse stores the template under TEMPLATE_NAME");
        let mut output = LimitedOutput::default();

        match template.render_captured_to(context, &mut output) {
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

/// The variables of an action step's templates. They are the top-level keys of the run's
/// input (when it is an object), then `input` (the whole input) and `payload` (the
/// previous step's output), which replace input keys of the same name.
///
/// The context shares the input and the payload, and a template converts only the values
/// that it reads. A step that reads one field thus costs the same for a record of 300 KB
/// as for one of 30 bytes.
#[derive(Clone, Debug)]
pub struct StepContext {
    input: Arc<Value>,
    payload: Arc<Value>,
}

impl StepContext {
    /// Returns the context of a step with the run's `input` and the current `payload`.
    pub fn new(input: Arc<Value>, payload: Arc<Value>) -> Self {
        Self { input, payload }
    }

    /// Returns the input's keys that are variables, without `input` and `payload`.
    fn input_keys(&self) -> impl Iterator<Item = &str> {
        self.input
            .as_object()
            .into_iter()
            .flat_map(|fields| fields.keys())
            .map(String::as_str)
            .filter(|key| !matches!(*key, "input" | "payload"))
    }
}

impl Object for StepContext {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &TemplateValue) -> Option<TemplateValue> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<TemplateValue> {
        match key {
            "input" => Some(JsonView::value(&self.input, Vec::new(), &self.input)),
            "payload" => Some(JsonView::value(&self.payload, Vec::new(), &self.payload)),
            _ => {
                let field = self.input.as_object()?.get(key)?;
                Some(JsonView::value(
                    &self.input,
                    vec![Segment::Key(key.to_owned())],
                    field,
                ))
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<TemplateValue> = self
            .input_keys()
            .chain(["input", "payload"])
            .map(TemplateValue::from)
            .collect();
        Enumerator::Values(keys)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.input_keys().count() + 2)
    }
}

/// One step on the way from a JSON document's root to a value inside it.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A JSON object or array inside a shared document, as a template value. It converts a
/// member only when a template reads it, keeping the order of object keys.
///
/// The conversion is written by hand instead of going through serde, because serde_json's
/// `arbitrary_precision` feature serialises a number as a one-entry map.
#[derive(Debug)]
struct JsonView {
    root: Arc<Value>,
    path: Vec<Segment>,
}

impl JsonView {
    /// Returns a view of the whole of `root`, which is an object or an array.
    fn root(root: Arc<Value>) -> Self {
        Self {
            root,
            path: Vec::new(),
        }
    }

    /// Returns `value`, found at `path` in `root`, as a template value: a view for an
    /// object or array, a converted scalar otherwise.
    fn value(root: &Arc<Value>, path: Vec<Segment>, value: &Value) -> TemplateValue {
        match value {
            Value::Null => TemplateValue::from(()),
            Value::Bool(flag) => TemplateValue::from(*flag),
            Value::Number(number) => number_value(number),
            Value::String(text) => TemplateValue::from(text.as_str()),
            Value::Array(_) | Value::Object(_) => TemplateValue::from_object(Self {
                root: root.clone(),
                path,
            }),
        }
    }

    /// Returns the viewed value. The path was taken from the document, which nothing
    /// changes, so it always leads to a value.
    fn node(&self) -> &Value {
        let mut node = &*self.root;
        for segment in &self.path {
            let next = match segment {
                Segment::Key(key) => node.get(key.as_str()),
                Segment::Index(index) => node.get(*index),
            };
            node = next.unwrap_or(&Value::Null);
        }
        node
    }

    /// Returns the view of the member at `segment`.
    fn member(&self, segment: Segment, value: &Value) -> TemplateValue {
        let mut path = Vec::with_capacity(self.path.len() + 1);
        path.extend_from_slice(&self.path);
        path.push(segment);
        Self::value(&self.root, path, value)
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &TemplateValue) -> Option<TemplateValue> {
        match self.node() {
            Value::Object(fields) => {
                let key = key.as_str()?;
                let value = fields.get(key)?;
                Some(self.member(Segment::Key(key.to_owned()), value))
            }
            Value::Array(items) => {
                let index = key.as_usize()?;
                let value = items.get(index)?;
                Some(self.member(Segment::Index(index), value))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Value::Object(fields) => Enumerator::Values(
                fields
                    .keys()
                    .map(|key| TemplateValue::from(key.as_str()))
                    .collect(),
            ),
            Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.node() {
            Value::Object(fields) => Some(fields.len()),
            Value::Array(items) => Some(items.len()),
            _ => Some(0),
        }
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
    } else if significant_digits(&text) <= MAX_FLOAT_DIGITS
        && let Some(float) = text.parse::<f64>().ok().filter(|float| float.is_finite())
    {
        return TemplateValue::from(float);
    }

    TemplateValue::from_object(NumberText(text))
}

/// The most significant digits of a decimal that becomes an f64 in templates. Every f64
/// prints in at most 17 (as 0.30000000000000004 does), so readings that a device
/// serialised from a double stay numbers. A decimal of 17 digits that is not exactly an
/// f64 becomes the nearest one.
const MAX_FLOAT_DIGITS: usize = 17;

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
