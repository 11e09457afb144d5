//! The retention task: removes each webhook's oldest files when its `files.max_age_hours`
//! or `files.max_total_bytes` is exceeded, and each camera's when its `max_age_hours` or
//! `max_total_bytes` is.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubkit_files::{FileAge, Retention, select_expired};
use hubkit_store::{FileRemoval, FileRow};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::metrics::RemovalLabels;
use crate::state::AppState;

/// Time between two retention passes.
pub(crate) const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Runs a pass at start and then every [`RETENTION_INTERVAL`] until shutdown.
pub(crate) async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(RETENTION_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        enforce(&state, Utc::now()).await;
    }
}

/// Runs one retention pass at `now` over the webhooks and cameras of the configuration in
/// force, and returns how many files it removed.
///
/// Each file is first marked removed in the store, together with its records, and only
/// then deleted from disk. A crash between the two leaves a file that no live record
/// refers to, never a live record without its file.
pub(crate) async fn enforce(state: &AppState, now: DateTime<Utc>) -> usize {
    let runtime = state.runtime.load_full();
    let mut removed = 0;
    for endpoint in runtime.registry.iter() {
        let webhook = endpoint.webhook();
        let policy = Retention {
            max_age: webhook.files.max_age,
            max_total_bytes: webhook.files.max_total_bytes,
        };
        if !policy.is_limited() {
            continue;
        }
        let owner = webhook.short_id.to_string();
        match enforce_one(state, &owner, &policy, now).await {
            Ok(count) => removed += count,
            Err(err) => warn!(
                webhook.name = %webhook.name,
                error = %err,
                "retention pass failed; the next pass tries again"
            ),
        }
    }
    for endpoint in runtime.cameras.iter() {
        let camera = endpoint.camera();
        let policy = Retention {
            max_age: camera.max_age,
            max_total_bytes: camera.max_total_bytes,
        };
        if !policy.is_limited() {
            continue;
        }
        match enforce_one(state, &camera.file_owner(), &policy, now).await {
            Ok(count) => removed += count,
            Err(err) => warn!(
                camera.name = %camera.name,
                error = %err,
                "retention pass failed; the next pass tries again"
            ),
        }
    }
    if removed > 0 {
        info!(files.removed = removed, "retention removed stored files");
    }
    removed
}

async fn enforce_one(
    state: &AppState,
    owner: &str,
    policy: &Retention,
    now: DateTime<Utc>,
) -> Result<usize, hubkit_store::StoreError> {
    let files: Vec<FileRow> = state.store.live_files(owner).await?;
    let ages: Vec<FileAge> = files
        .iter()
        .map(|row| FileAge {
            size: row.file.size,
            received_at: row.file.received_at,
        })
        .collect();
    let expired = select_expired(&ages, policy, now);
    if expired.is_empty() {
        return Ok(0);
    }
    let removals = expired
        .iter()
        .map(|(index, reason)| FileRemoval {
            id: files[*index].id,
            reason: reason.as_str().to_owned(),
        })
        .collect();
    state.store.mark_files_removed(removals, now).await?;

    for (index, reason) in &expired {
        let path = files[*index].file.path.clone();
        let store = state.files.clone();
        let deleted = tokio::task::spawn_blocking(move || store.remove(&path, now)).await;
        let path = &files[*index].file.path;
        match deleted {
            Ok(Ok(_)) => {
                debug!(file.path = %path, reason = reason.as_str(), "removed a stored file")
            }
            Ok(Err(err)) => {
                warn!(file.path = %path, error = %err, "failed to delete a file that retention marked removed")
            }
            Err(err) => warn!(file.path = %path, error = %err, "file removal task failed"),
        }
        state
            .metrics
            .files_removed
            .get_or_create(&RemovalLabels {
                reason: reason.as_str(),
            })
            .inc();
    }
    Ok(expired.len())
}
