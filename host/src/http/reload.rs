//! What starts a reload besides `POST /v1/admin/reload`: SIGHUP, and with `serve --watch` a
//! change to the manifest file or to a plugin's component file.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::Shared;

/// How often `--watch` looks at the files.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Reloads at every SIGHUP.
pub(crate) async fn on_hangup(state: Shared) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: reload through POST /v1/admin/reload");
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading");
        // The outcome is logged (and counted) by the reload itself.
        let _ = state.reload(crate::app::Tags::Locked).await;
    }
}

/// The files a configuration is read from: its manifest (if it has one) and each plugin's
/// component that is not built in.
fn watched(state: &Shared) -> Vec<PathBuf> {
    let app = state.app();
    let manifest = &app.manifest;
    let components = manifest.plugins.values().filter_map(|p| match &p.source {
        crate::app::manifest::Source::File(file) if !file.starts_with("builtin:") => Some(manifest.resolve(file.as_ref())),
        _ => None,
    });
    manifest.path.clone().into_iter().chain(components).collect()
}

/// What `--watch` compares: each file's modification time and size (`None`: missing).
fn stamps(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    paths.iter().map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())))).collect()
}

/// Reloads when a watched file changes. A change is acted on once it has held for one interval,
/// so a file still being written is not read half-way; a reload that fails (a broken build)
/// leaves the running plugins, and the next change is tried again.
pub(crate) async fn watch(state: Shared) {
    let mut paths = watched(&state);
    let mut seen = stamps(&paths);
    tracing::info!(files = paths.len(), "watching the manifest and the plugins' components for changes");
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Option<Vec<Option<(SystemTime, u64)>>> = None;
    loop {
        ticker.tick().await;
        let now = stamps(&paths);
        if now == seen {
            pending = None;
            continue;
        }
        if pending.as_ref() != Some(&now) {
            pending = Some(now);
            continue;
        }
        tracing::info!("a watched file changed: reloading");
        let _ = state.reload(crate::app::Tags::Locked).await;
        // The manifest may now name other components.
        paths = watched(&state);
        seen = stamps(&paths);
        pending = None;
    }
}
