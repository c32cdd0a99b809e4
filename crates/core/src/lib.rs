//! newswatch-core: the pure engine of newswatch.
//!
//! Everything that decides *whether* an event alerts lives here, and nothing
//! that moves bytes over a network does. The flow, in module order:
//!
//! * [`lang`]: the query language: [`lang::text`] normalizes and segments
//!   words, [`lang::query`] parses queries, [`lang::compile`] resolves lists
//!   and macros into executable expressions.
//! * [`rules`]: rule files (YAML with positions, [`rules::yaml`]) loaded,
//!   validated and compiled into a [`rules::RuleSet`].
//! * [`event`]: decoding input JSON into an [`event::Event`].
//! * [`matcher`]: one pass over an event against every rule.
//! * [`state`]: the stateful alert modes ([`state::Store`]) and the
//!   same-story detector ([`state::story`]).
//! * [`alert`]: the alert payload and its deterministic id.
//! * [`silence`]: silences, their validation and matching (wall-clock
//!   time passed in by the caller).
//! * [`engine`]: all of the above behind one [`Engine`], shared by the daemon,
//!   `replay` and `test`.
//!
//! Architecture invariant: this crate does no IO except reading rule files
//! ([`rules::load_paths`]); it has no async runtime, Kafka client, HTTP or metrics
//! dependency. Everything here is deterministic given its inputs.

pub mod alert;
pub mod engine;
pub mod event;
pub mod lang;
pub mod matcher;
pub mod rules;
pub mod silence;
pub mod state;

pub use engine::Engine;
