//! `GET /api/v1/actions`, `POST /api/v1/actions/<name>/run`, `GET /api/v1/action-runs`
//! and `GET /api/v1/action-runs/<id>`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use hubkit_model::format_timestamp;
use hubkit_store::{ActionRun, ActionRunQuery, ActionRunStatus, Cursor, NewActionRun};
use hubkit_triggers::TriggerSource;
use hyper::body::Incoming;
use serde_json::{Map, Value, json};
use tracing::{debug, warn};
use uuid::Uuid;

use super::Fired;
use crate::api::{invalid_parameter, json_response};
use crate::body::ResponseBody;
use crate::problem::{Problem, truncate};
use crate::state::AppState;

/// Runs per page of `GET /api/v1/action-runs` when the request gives no `limit`.
const DEFAULT_RUNS: usize = 50;

/// Largest `limit` of a page of runs.
const MAX_RUNS: usize = hubkit_store::MAX_PAGE;

/// How long `POST /api/v1/actions/<name>/run` waits for the run by default.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Maximum `wait_ms` of a run request.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// Characters escaped in an action name that goes into a URL path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Largest body of a run request: the properties, as a JSON object.
const MAX_PROPERTIES_BYTES: u64 = 1024 * 1024;

/// Serves `GET /api/v1/actions`: each action with its steps' components and the triggers
/// that run it.
pub(crate) fn actions(
    state: &AppState,
    request: &Parts,
) -> Result<Response<ResponseBody>, Problem> {
    if let Some(query) = request.uri.query().filter(|query| !query.is_empty()) {
        return Err(invalid_parameter(format!(
            "/api/v1/actions takes no parameters, but got {:?}",
            truncate(query, 60)
        )));
    }
    let runtime = state.runtime.load();
    let engine = &runtime.engine;
    let mut names: Vec<&str> = engine.action_names().collect();
    names.sort_unstable();
    let actions: Vec<Value> = names
        .into_iter()
        .filter_map(|name| engine.action(name))
        .map(|action| {
            let triggers: Vec<Value> = engine
                .triggers()
                .iter()
                .filter(|live| live.trigger.action == action.name())
                .map(|live| {
                    let kind = match live.trigger.source {
                        TriggerSource::Layer(_) => "layer",
                        TriggerSource::Timer(_) => "timer",
                    };
                    json!({"name": live.trigger.name, "kind": kind, "enabled": live.trigger.enabled})
                })
                .collect();
            let steps: Vec<&str> = action
                .steps()
                .iter()
                .map(|step| step.component().as_str())
                .collect();
            json!({
                "name": action.name(),
                "steps": steps,
                "triggers": triggers,
                "run_url": format!(
                    "/api/v1/actions/{}/run",
                    percent_encoding::utf8_percent_encode(action.name(), PATH_SEGMENT)
                ),
            })
        })
        .collect();
    Ok(json_response(&json!({ "actions": actions })))
}

/// Serves `POST /api/v1/actions/<name>/run`: stores a run of the action with the body's
/// properties, then waits for it to finish, up to `wait_ms`.
pub(crate) async fn run(
    state: &Arc<AppState>,
    request: &Parts,
    body: &mut Option<Incoming>,
    name: &str,
) -> Result<Response<ResponseBody>, Problem> {
    if request.method != Method::POST {
        return Err(Problem::method_not_allowed(
            "POST",
            "/api/v1/actions/<name>/run starts a run; use POST".to_owned(),
        ));
    }
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .map_err(|_| action_not_found(state, name))?
        .into_owned();
    let wait = parse_wait(request.uri.query().unwrap_or(""))?;
    let runtime = state.runtime.load_full();
    if runtime.engine.action(&name).is_none() {
        return Err(action_not_found(state, &name));
    }
    let bytes = crate::webhook::read_body(
        &request.headers,
        body,
        MAX_PROPERTIES_BYTES,
        &runtime,
        "the run request",
    )
    .await?;
    let properties = parse_properties(&bytes)?;

    let id = Uuid::now_v7().simple().to_string();
    let now = Utc::now();
    let mut input = Map::new();
    input.insert("TriggerName".to_owned(), Value::Null);
    input.insert("Properties".to_owned(), Value::Object(properties));
    input.insert("FiredAt".to_owned(), Value::from(format_timestamp(&now)));
    let new_run = NewActionRun {
        id: id.clone(),
        trigger: None,
        action: name.clone(),
        record: None,
        input: Value::Object(input),
        created_at: now,
    };
    let fired = Fired::of(std::slice::from_ref(&new_run));
    let finished = (!wait.is_zero()).then(|| state.actions.wait_for(&id));
    if let Err(err) = state.store.insert_action_run(new_run).await {
        state.actions.forget(&id);
        warn!(action = %name, error = %crate::error_chain(&err), "failed to store an action run");
        return Err(Problem::store_unavailable());
    }
    fired.stored(state);
    debug!(action = %name, run.id = %id, "action run requested through the API");

    let output = match finished {
        Some(finished) => match tokio::time::timeout(wait, finished).await {
            Ok(Ok(result)) => Some(result.output),
            _ => {
                state.actions.forget(&id);
                None
            }
        },
        None => None,
    };
    let stored = state
        .store
        .action_run(&id)
        .await
        .map_err(|err| store_unavailable(&err))?;
    let Some(stored) = stored else {
        return Err(Problem::store_unavailable());
    };
    let mut view = run_view(&stored, true);
    let status = match output {
        Some(output) => {
            view.insert("output".to_owned(), output);
            StatusCode::OK
        }
        None => StatusCode::ACCEPTED,
    };
    let mut response = json_response(&Value::Object(view));
    *response.status_mut() = status;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/action-runs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Serves `GET /api/v1/action-runs`: one page of runs, newest first.
pub(crate) async fn list(
    state: &AppState,
    request: &Parts,
) -> Result<Response<ResponseBody>, Problem> {
    let query = parse_list(request.uri.query().unwrap_or(""))?;
    let page = state
        .store
        .action_runs(query)
        .await
        .map_err(|err| store_unavailable(&err))?;
    let runs: Vec<Value> = page
        .runs
        .iter()
        .map(|run| Value::Object(run_view(run, false)))
        .collect();
    Ok(json_response(&json!({
        "runs": runs,
        "next_before": page.next_before,
        "queued": page.queued,
    })))
}

/// Serves `GET /api/v1/action-runs/<id>`: one run with its input.
pub(crate) async fn one(
    state: &AppState,
    id: &str,
    query: Option<&str>,
) -> Result<Response<ResponseBody>, Problem> {
    if let Some(name) = query
        .unwrap_or_default()
        .split('&')
        .find(|pair| !pair.is_empty())
    {
        let name = name.split_once('=').map_or(name, |(name, _)| name);
        return Err(invalid_parameter(format!(
            "unknown parameter {:?}; /api/v1/action-runs/<id> takes none",
            truncate(name, 60)
        )));
    }
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "action-run-not-found",
            "Not Found",
            format!(
                "there is no action run {:?}; list them at /api/v1/action-runs",
                truncate(id, 60)
            ),
        )
    };
    if id.len() != 32 || !id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let run = state
        .store
        .action_run(id)
        .await
        .map_err(|err| store_unavailable(&err))?
        .ok_or_else(not_found)?;
    Ok(json_response(&Value::Object(run_view(&run, true))))
}

/// Builds the view of a run that the API shows. The input, which contains the record that
/// fired the run, is left out of listings to keep pages small.
fn run_view(run: &ActionRun, with_input: bool) -> Map<String, Value> {
    let time = |time: Option<chrono::DateTime<Utc>>| time.map(|time| format_timestamp(&time));
    let mut view = Map::new();
    view.insert("id".to_owned(), Value::from(run.id.clone()));
    view.insert("cursor".to_owned(), Value::from(run.cursor.to_string()));
    view.insert("trigger".to_owned(), json!(run.trigger));
    view.insert("action".to_owned(), Value::from(run.action.clone()));
    view.insert(
        "data_id".to_owned(),
        json!(run.data_id.map(|id| id.to_string())),
    );
    view.insert("status".to_owned(), Value::from(run.status.as_str()));
    view.insert("attempts".to_owned(), Value::from(run.attempts));
    view.insert(
        "created_at".to_owned(),
        Value::from(format_timestamp(&run.created_at)),
    );
    view.insert("started_at".to_owned(), json!(time(run.started_at)));
    view.insert("finished_at".to_owned(), json!(time(run.finished_at)));
    view.insert(
        "duration_ms".to_owned(),
        json!(run.duration().map(|took| took.num_milliseconds())),
    );
    view.insert("error".to_owned(), json!(run.error));
    view.insert("steps".to_owned(), run.steps.clone());
    if with_input {
        view.insert("input".to_owned(), run.input.clone());
    }
    view
}

fn parse_properties(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(properties)) => Ok(properties),
        Ok(other) => Err(invalid_body(format!(
            "the body is {}, but it must be a JSON object of properties such as \
             {{\"severity\": \"high\"}}, or empty",
            json_kind(&other)
        ))),
        Err(err) => Err(invalid_body(format!(
            "the body is not valid JSON ({err}); send an object of properties such as \
             {{\"severity\": \"high\"}}, or nothing"
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid_body(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-properties",
        "Bad Request",
        detail,
    )
}

fn parse_wait(query: &str) -> Result<Duration, Problem> {
    let parameters = hubkit_decode::decode_query(query)
        .map_err(|err| invalid_parameter(format!("the query string is invalid: {err}")))?;
    let mut wait = None;
    for (name, value) in parameters {
        match name.as_str() {
            "wait_ms" => {
                let Value::String(value) = value else {
                    return Err(invalid_parameter(
                        "wait_ms is given more than once; give it once".to_owned(),
                    ));
                };
                wait = Some(parse_wait_ms(&value)?);
            }
            other => {
                return Err(invalid_parameter(format!(
                    "unknown parameter {:?}; /api/v1/actions/<name>/run takes wait_ms",
                    truncate(other, 60)
                )));
            }
        }
    }
    Ok(wait.unwrap_or(DEFAULT_WAIT))
}

/// Parses the value of `wait_ms`, after percent-decoding.
fn parse_wait_ms(value: &str) -> Result<Duration, Problem> {
    // Digits only: Rust's parser would also take a leading "+".
    match value
        .bytes()
        .all(|byte| byte.is_ascii_digit())
        .then(|| value.parse::<u64>())
    {
        Some(Ok(ms)) if ms <= MAX_WAIT.as_millis() as u64 => Ok(Duration::from_millis(ms)),
        _ => Err(invalid_parameter(format!(
            "wait_ms {:?} is invalid; it must be 0 to {} (0 answers at once with 202)",
            truncate(value, 60),
            MAX_WAIT.as_millis()
        ))),
    }
}

fn parse_list(query: &str) -> Result<ActionRunQuery, Problem> {
    let mut parsed = ActionRunQuery {
        limit: DEFAULT_RUNS,
        ..ActionRunQuery::default()
    };
    let parameters = hubkit_decode::decode_query(query)
        .map_err(|err| invalid_parameter(format!("the query string is invalid: {err}")))?;
    for (name, value) in parameters {
        let Value::String(value) = value else {
            return Err(invalid_parameter(format!(
                "parameter {:?} is given more than once; give it once",
                truncate(&name, 60)
            )));
        };
        match name.as_str() {
            "status" => {
                parsed.status = Some(value.parse::<ActionRunStatus>().map_err(|_| {
                    invalid_parameter(format!(
                        "status {:?} is invalid; use pending, running, succeeded or failed",
                        truncate(&value, 60)
                    ))
                })?);
            }
            "trigger" => parsed.trigger = Some(value),
            "before" => match value.parse::<Cursor>() {
                Ok(cursor) => parsed.before = Some(cursor),
                Err(_) => {
                    return Err(invalid_parameter(format!(
                        "before {:?} is invalid; use the next_before value of the previous page",
                        truncate(&value, 60)
                    )));
                }
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_RUNS).contains(&n) => parsed.limit = n,
                _ => {
                    return Err(invalid_parameter(format!(
                        "limit {:?} is invalid; it must be 1 to {MAX_RUNS}",
                        truncate(&value, 60)
                    )));
                }
            },
            other => {
                return Err(invalid_parameter(format!(
                    "unknown parameter {:?}; /api/v1/action-runs takes status, trigger, before \
                     and limit",
                    truncate(other, 60)
                )));
            }
        }
    }
    Ok(parsed)
}

fn action_not_found(state: &AppState, name: &str) -> Problem {
    let runtime = state.runtime.load();
    let mut names: Vec<&str> = runtime.engine.action_names().collect();
    names.sort_unstable();
    let known = if names.is_empty() {
        "no actions are configured".to_owned()
    } else {
        format!("the actions are {}", names.join(", "))
    };
    Problem::new(
        StatusCode::NOT_FOUND,
        "action-not-found",
        "Not Found",
        format!("there is no action {:?}; {known}", truncate(name, 60)),
    )
}

fn store_unavailable(err: &hubkit_store::StoreError) -> Problem {
    warn!(error = %crate::error_chain(err), "failed to read action runs");
    Problem::store_unavailable()
}
