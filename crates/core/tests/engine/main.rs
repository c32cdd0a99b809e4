//! The engine's integration tests, as one binary that links neither Kafka
//! nor the daemon: the query language's semantics table by table
//! ([`query_semantics`], and for wildcards, NEAR/s, comparisons and
//! `_exists_` [`query_language2`]), property tests ([`robustness`]) and the default
//! same-story setting on a labelled sample of real wire copy ([`story`]).

mod morph;
mod query_language2;
mod query_semantics;
mod robustness;
mod story;
