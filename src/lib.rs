//! newswatch: the daemon and command-line tool around [`newswatch_core`].
//!
//! The engine (query language, rules, matcher, stateful modes, alerts) is the
//! pure `newswatch-core` crate. This crate holds what touches the world:
//! [`config`] (typed, validated at start-up), [`metrics`] (one typed struct
//! owning its registry), [`redact`] (secrets out of logs), the offline
//! commands [`replay`] (with its rule [`profile`]), [`ruletest`] and
//! [`explain`], and the Kafka
//! [`daemon`] with its HTTP endpoints.
//! See ARCHITECTURE.md for the map and the invariants.

pub mod config;
pub mod daemon;
pub mod explain;
pub mod metrics;
pub mod profile;
pub mod redact;
pub mod replay;
pub mod rulestats;
pub mod ruletest;
pub mod tail;

pub use config::Config;
pub use daemon::{run, DaemonError};
