//! The engine's integration tests, as one binary that links neither Kafka
//! nor the daemon: the query language's semantics table by table
//! ([`query_semantics`], and for wildcards, NEAR/s, comparisons and
//! `_exists_` [`query_language2`]), property tests ([`robustness`]) and the default
//! same-story setting on a labelled sample of real wire copy ([`story`]),
//! and the tokenizer's fast paths against the general path ([`text_fast`]).

mod morph;
mod query_language2;
mod query_semantics;
mod robustness;
mod story;
mod text_fast;

/// The engine's alerts, each held to `schemas/newswatch.alert.v1.json`
/// (through its JSON form, as published): every test that builds alerts
/// checks them against the schema subscribers validate with.
#[track_caller]
fn schema_checked(alerts: Vec<newswatch_core::alert::Alert>) -> Vec<newswatch_core::alert::Alert> {
    for a in &alerts {
        let bytes = serde_json::to_vec(a).expect("an alert serializes");
        newswatch_testkit::schemas::assert_payload(&bytes);
    }
    alerts
}
