//! The rule set in force, and hot reload.
//!
//! The engine sits behind an `ArcSwap`: a matching task takes one snapshot
//! per event, so a reload swaps the whole rule set atomically between
//! events. Nothing ever matches against a half-loaded set, and no event
//! waits for a reload: loading and compiling happen off to the side, and a
//! failed load leaves the old rules in force.
//!
//! A reload is also refused when a topic it names does not exist or would
//! feed the daemon back (`topics::TopicCheck`, once the daemon set one):
//! the same errors as a load error, so old rules stay and it is counted.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use super::topics::TopicCheck;
use crate::metrics::Metrics;
use newswatch_core::event::EventFields;
use newswatch_core::rules::{self, LoadErrors};
use newswatch_core::Engine;

pub struct RulesHandle {
    engine: ArcSwap<Engine>,
    paths: Vec<PathBuf>,
    fields: EventFields,
    /// Serializes reloads (file watcher, SIGHUP and HTTP may race).
    reload_lock: tokio::sync::Mutex<()>,
    /// The topics a reload names must pass this; unset: not checked.
    topic_check: OnceLock<Arc<TopicCheck>>,
}

impl RulesHandle {
    /// Load the rules once, at start-up.
    pub fn load(paths: Vec<PathBuf>, fields: EventFields) -> Result<Self, LoadErrors> {
        let rs = rules::load_paths(&paths)?;
        Ok(RulesHandle {
            engine: ArcSwap::from_pointee(Engine::new(rs, fields.clone())),
            paths,
            fields,
            reload_lock: tokio::sync::Mutex::new(()),
            topic_check: OnceLock::new(),
        })
    }

    /// From now on, a reload is swapped in only when `check` passes. Set
    /// once; a second call is ignored.
    pub fn set_topic_check(&self, check: Arc<TopicCheck>) {
        let _ = self.topic_check.set(check);
    }

    /// The rule set in force now.
    pub fn current(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Load the rule files again; swap them in when valid. On failure every
    /// error is logged, counted, returned, and the old rules stay.
    pub async fn reload(&self, metrics: &Metrics, why: &str) -> Result<Arc<Engine>, LoadErrors> {
        let _guard = self.reload_lock.lock().await;
        let paths = self.paths.clone();
        let loaded = tokio::task::spawn_blocking(move || rules::load_paths(&paths))
            .await
            .unwrap_or_else(|e| {
                Err(LoadErrors(vec![rules::Diagnostic {
                    file: PathBuf::from("-"),
                    line: 1,
                    col: 1,
                    message: format!("rule loading panicked: {e}"),
                }]))
            });
        let loaded = match (loaded, self.topic_check.get()) {
            (Ok(rs), Some(check)) => check.check(&rs).await.map(|()| rs),
            (other, _) => other,
        };
        match loaded {
            Ok(rs) => {
                let previous = self.current();
                let old = previous.rules.version.clone();
                for id in newswatch_core::state::redefined(&previous.rules, &rs) {
                    tracing::info!(
                        rule = %id,
                        "rule's mode, window, throttle or group_by changed: its state starts fresh"
                    );
                }
                let engine = Arc::new(Engine::new(rs, self.fields.clone()));
                self.engine.store(engine.clone());
                metrics.rules_reload(true);
                metrics.rules_in_force(engine.rules.rules.len(), &engine.rules.version);
                tracing::info!(
                    trigger = why,
                    rules = engine.rules.rules.len(),
                    version = %engine.rules.version,
                    previous = %old,
                    "rules reloaded"
                );
                Ok(engine)
            }
            Err(errs) => {
                metrics.rules_reload(false);
                for d in &errs.0 {
                    tracing::error!(
                        trigger = why,
                        error = %d,
                        "rule reload rejected, old rules stay in force"
                    );
                }
                Err(errs)
            }
        }
    }

    /// Watch the rule paths; reload (debounced) when a file changes.
    pub fn watch(
        self: &Arc<Self>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> notify::Result<()> {
        // The watched directories may hold other files that change (a log
        // file next to the rules, even the daemon's own stderr): reload only
        // when the rule files' contents changed, or every reload's log line
        // would trigger the next one. Taken before the watch starts, so no
        // change between the two goes unnoticed.
        let mut last = fingerprint(&self.paths);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res {
                    if !ev.kind.is_access() {
                        let _ = tx.send(());
                    }
                }
            })?;
        for p in &self.paths {
            // Watch a file's directory too: editors replace files by rename,
            // which a watch on the old inode would miss.
            let target = if p.is_file() {
                p.parent().map(PathBuf::from).unwrap_or_else(|| p.clone())
            } else {
                p.clone()
            };
            let target = if target.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                target
            };
            // A file's directory is watched alone, not its whole subtree.
            let mode = if p.is_file() {
                RecursiveMode::NonRecursive
            } else {
                RecursiveMode::Recursive
            };
            watcher.watch(&target, mode)?;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _watcher = watcher; // dropped (and stopped) with this task
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    got = rx.recv() => {
                        if got.is_none() {
                            return;
                        }
                    }
                }
                // Debounce: an editor's save is several events.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
                while rx.try_recv().is_ok() {}
                let paths = this.paths.clone();
                let now = tokio::task::spawn_blocking(move || fingerprint(&paths))
                    .await
                    .unwrap_or_default();
                if now == last {
                    tracing::debug!("rule files unchanged, not reloading");
                    continue;
                }
                last = now;
                let _ = this.reload(&metrics, "file change").await;
            }
        });
        Ok(())
    }
}

/// A hash of the rule files' names and contents (and of any error reading
/// them), to tell an edit of the rules from other changes in their directories.
fn fingerprint(paths: &[PathBuf]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match rules::expand_paths(paths) {
        Ok(files) => {
            for f in files {
                h.update(f.to_string_lossy().as_bytes());
                h.update([0]);
                match std::fs::read(&f) {
                    Ok(bytes) => h.update(&bytes),
                    Err(e) => h.update(format!("\0error: {e}").as_bytes()),
                }
                h.update([0]);
            }
        }
        Err(errs) => {
            for d in errs {
                h.update(format!("\0error: {d}").as_bytes());
            }
        }
    }
    h.finalize().to_vec()
}
