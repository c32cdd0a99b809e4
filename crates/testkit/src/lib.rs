//! Test support for newswatch that needs no Kafka client, shared by the
//! integration tests, the engine's benches and the tools (`publish = false`).
//!
//! * [`tansu`]: a real Kafka-compatible broker per test ([`Broker`]), started,
//!   stopped, frozen and restarted; topics made with its CLI.
//! * [`daemon`]: the daemon's config file ([`Setup`]), the binary as a child
//!   process ([`DaemonProc`]) and a per-test world ([`Fixture`]).
//! * [`process`]: child processes killed when dropped, signals by name.
//! * [`net`], [`metrics`]: a free port, plain HTTP to the daemon, polling
//!   with a deadline; samples out of the Prometheus exposition.
//! * [`schemas`]: the alert and digest payloads held to `schemas/*.json`.
//! * [`corpus`], [`rulegen`], [`alloc`]: news corpora (`NEWSWATCH_CORPUS`),
//!   synthetic watch rules drawn from them, a counting allocator.
//!
//! Architecture invariant: nothing here links librdkafka, so that the
//! engine's benches, which use [`rulegen`] and [`alloc`], build without it.
//! The Kafka clients (producer, topic readers, offsets) are in
//! `newswatch-testkit-kafka`.
//!
//! Failures here are test failures: helpers the tests call panic with a
//! message instead of returning errors, and the few the tools need as well
//! return a `Result` (`Broker::launch`, `Broker::try_create_topic`,
//! `Corpus::locate`).

use std::path::Path;

pub mod alloc;
pub mod corpus;
pub mod daemon;
pub mod metrics;
pub mod net;
pub mod process;
pub mod rulegen;
pub mod schemas;
pub mod tansu;

pub use daemon::{DaemonProc, Fixture, Setup, Tuning, FAST_SESSION};
pub use net::{free_port, http, wait_for};
pub use process::{send_signal, Proc};
pub use tansu::Broker;

/// The repository's root directory (this crate is `crates/testkit`).
pub fn repo_root() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here)
}

/// `prefix-PID-N`: a name no other test (or test process) uses, for topics
/// and consumer groups.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
