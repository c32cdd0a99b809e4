//! Rule files (SPEC §4): loading, validation, compilation into a [`RuleSet`].
//!
//! All files share one namespace of rule ids, list names and macro names.
//! Loading never stops at the first problem: every error is collected as a
//! [`Diagnostic`] with `FILE:LINE:COL`, and for a query error the position of
//! the bad token inside the file. Either every file is valid and a complete
//! rule set comes out, or nothing does; a caller that holds an older rule set
//! keeps it (hot reload relies on this).
//!
//! * [`yaml`]: the YAML tree with positions that every file is read into.
//! * `loader`: the phases of a load, from files to a [`RuleSet`].
//! * `rule`: the [`Rule`] type and the validation of each of its keys.
//! * `diag`: [`Diagnostic`] and [`LoadErrors`], as `check` prints them.
//! * `ruleset`: the [`RuleSet`], which maps spans back to file positions.

mod diag;
mod loader;
mod rule;
mod ruleset;
pub mod yaml;

pub use diag::{Diagnostic, LoadErrors};
pub use loader::{expand_paths, load_paths, load_strs};
pub use rule::{
    is_field_name, is_valid_rule_id, is_valid_topic, AlertMode, DigestSpec, Rule, Severity,
    MAX_DIGEST_ITEMS,
};
pub use ruleset::RuleSet;

#[cfg(test)]
mod tests;
