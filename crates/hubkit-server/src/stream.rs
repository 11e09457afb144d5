//! `GET /api/v1/records/stream`: committed records as Server-Sent Events.
//!
//! Each event is `id: <cursor>`, `event: record`, `data: <record JSON>`. A client that
//! reconnects with `Last-Event-ID` first gets every matching record committed after that
//! cursor from the store, then the live ones. A new stream with `since` first gets the
//! stored records from that time on. A client too slow for the live channel is
//! caught up from the store too, so no committed record is skipped.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hubkit_store::{Cursor, MAX_PAGE, Order, RecordQuery, StoredRecord};
use hyper::body::Frame;
use tokio::sync::{broadcast, mpsc};
use tracing::debug;

use crate::api::ListedRecord;
use crate::body::ResponseBody;
use crate::state::AppState;

/// Interval of the keep-alive comments that keep proxies and the idle timeout from closing
/// a quiet stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Opens a stream of records matching `filter`, resuming after `last_event_id` if given.
pub(crate) async fn open(
    state: Arc<AppState>,
    filter: RecordQuery,
    last_event_id: Option<Cursor>,
) -> Response<ResponseBody> {
    // Subscribe before reading the store, so nothing committed in between is missed. The
    // newest cursor is read before the response is sent: a record committed after the
    // client has its response is above it and reaches the client.
    let live = state.store.subscribe();
    let latest = latest_cursor(&state).await;
    // A few events in flight are enough; a slow client makes the task wait, not buffer.
    let (sender, receiver) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        if let Err(reason) = run(&state, filter, last_event_id, latest, live, &sender).await {
            debug!(reason, "record stream ended");
        }
    });
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), receiver))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn run(
    state: &AppState,
    filter: RecordQuery,
    last_event_id: Option<Cursor>,
    latest: Option<Cursor>,
    mut live: broadcast::Receiver<Arc<StoredRecord>>,
    sender: &mpsc::Sender<Bytes>,
) -> Result<(), &'static str> {
    let mut shutdown = state.shutdown.clone();
    send(sender, Bytes::from_static(b"retry: 3000\n: connected\n\n")).await?;
    // `position` is the newest cursor the client has been brought up to; live records at
    // or below it were already sent or deliberately skipped.
    // With `since`, a new stream first replays the stored records from that time on.
    let mut position = match (last_event_id, filter.since) {
        (Some(cursor), _) => {
            // A cursor beyond the newest record (the store was replaced, say) would hide
            // every new record, so the stream continues from the newest one instead.
            let start = match latest {
                Some(latest) if latest < cursor => Some(latest),
                None => None,
                Some(_) => Some(cursor),
            };
            catch_up(state, &filter, start, sender).await?
        }
        (None, Some(_)) => catch_up(state, &filter, None, sender).await?,
        (None, None) => latest,
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(stored) => {
                    if position.is_some_and(|p| stored.cursor <= p) {
                        continue;
                    }
                    position = Some(stored.cursor);
                    if filter.matches(&stored.record) {
                        send(sender, event(&stored)).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    debug!(skipped, "record stream client is behind; catching up from the store");
                    position = catch_up(state, &filter, position, sender).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Err("store closed"),
            },
            _ = heartbeat.tick() => send(sender, Bytes::from_static(b": keep-alive\n\n")).await?,
            _ = shutdown.changed() => return Err("hub shutting down"),
            _ = sender.closed() => return Err("client disconnected"),
        }
    }
}

/// Sends every matching record after `after` (from the start when `None`) from the store
/// and returns the cursor of the last one sent, or `after`. A live record above it has not
/// been sent yet.
async fn catch_up(
    state: &AppState,
    filter: &RecordQuery,
    after: Option<Cursor>,
    sender: &mpsc::Sender<Bytes>,
) -> Result<Option<Cursor>, &'static str> {
    let mut position = after;
    loop {
        let query = RecordQuery {
            order: Order::Asc,
            cursor: position,
            limit: MAX_PAGE,
            ..filter.clone()
        };
        let page = state
            .store
            .query(query)
            .await
            .map_err(|_| "store read failed")?;
        for stored in &page.records {
            send(sender, event(stored)).await?;
            position = Some(stored.cursor);
        }
        if page.next_cursor.is_none() {
            break;
        }
    }
    Ok(position)
}

async fn latest_cursor(state: &AppState) -> Option<Cursor> {
    let query = RecordQuery {
        order: Order::Desc,
        limit: 1,
        ..RecordQuery::default()
    };
    let page = state.store.query(query).await.ok()?;
    page.records.first().map(|stored| stored.cursor)
}

fn event(stored: &StoredRecord) -> Bytes {
    let json = serde_json::to_string(&ListedRecord::new(stored)).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: record\ndata: {json}\n\n",
        stored.cursor
    ))
}

async fn send(sender: &mpsc::Sender<Bytes>, chunk: Bytes) -> Result<(), &'static str> {
    sender.send(chunk).await.map_err(|_| "client disconnected")
}
