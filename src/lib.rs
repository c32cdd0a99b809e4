//! newswatch: match news events against analysts' watch rules, publish alerts.
//!
//! The core is pure and synchronous: [`text`] normalizes words, [`query`]
//! parses the query language, [`compile`] resolves lists and macros into
//! executable expressions, [`matcher`] tests an event against every rule,
//! [`alert`] builds the payload, [`story`] tells whether two events are the
//! same story (for `first_seen` rules). IO lives at the edges: [`rules`]
//! reads rule files, [`replay`], [`ruletest`] and [`explain`] are the
//! offline commands.
//! See ARCHITECTURE.md for the map and the invariants.

pub mod alert;
pub mod compile;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod event;
pub mod explain;
pub mod matcher;
pub mod metrics;
pub mod query;
pub mod redact;
pub mod replay;
pub mod rules;
pub mod ruletest;
pub mod state;
pub mod story;
pub mod text;
pub mod yaml;

pub use config::Config;
pub use daemon::{run, DaemonError};
pub use engine::Engine;
