//! newswatch's integration tests, as one binary (ripgrep's layout): the
//! daemon and librdkafka are linked once instead of once per area. One
//! module per area; the shared harness is `newswatch-testkit` (broker,
//! daemon process, HTTP, metrics, config) and `newswatch-testkit-kafka`
//! (producer, topic readers, offsets), and [`util`] holds what needs the
//! daemon's own crate.
//!
//! The Kafka tests start their own Tansu brokers (`~/.cargo/bin/tansu` or
//! `$TANSU`); Alertmanager and promtool come from the system (scripts/test
//! installs all three). Run one area with `cargo test --test it cli::`.

mod alertmanager;
mod cli;
mod daemon;
mod deploy;
mod digests;
mod docs;
mod http;
mod logs;
mod refused;
mod resilience;
mod silences;
mod spike;
mod stateful;
mod subscriber;
mod tail;
mod topics;
mod util;
