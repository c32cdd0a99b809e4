//! The query language, from words to executable expressions.
//!
//! [`text`] turns text and query words into normalized words (the one place
//! where "what is a word" is decided), [`query`] parses a query into a syntax
//! tree with spans, and [`compile`] resolves field scopes, `@lists` and
//! `$macros` into [`compile::Expr`] trees over a shared pattern dictionary.
//! [`morph`] reduces words to stems for `~word`, and [`detect`] tells the
//! language of an event that has no `lang`.
//! [`sentence`] maps word positions to sentences for `NEAR/s`, [`compare`]
//! holds keyword comparisons, [`pattern`] wildcard patterns.
//!
//! Architecture invariant: pure functions of their inputs; no IO.

pub mod compare;
pub mod compile;
pub mod detect;
pub mod morph;
pub mod pattern;
pub mod query;
pub mod sentence;
pub mod text;
