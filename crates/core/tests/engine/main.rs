//! The engine's integration tests, as one binary that links neither Kafka
//! nor the daemon: the query language's semantics table by table
//! ([`query_semantics`], and for wildcards, NEAR/s, comparisons and
//! `_exists_` [`query_language2`]), property tests ([`robustness`]) and the default
//! same-story setting on a labelled sample of real wire copy ([`story`]),
//! and the tokenizer's fast paths against the general path ([`text_fast`]).

mod query_language2;
mod query_semantics;
mod robustness;
mod story;
mod text_fast;
