//! The result of a load: every enabled rule, compiled, with the file texts
//! that its spans point into (so `explain` and `test` can quote and locate
//! any clause).

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::yaml::{self, Node};
use super::Rule;
use crate::lang::compile::SrcId;
use crate::lang::query::Span;
use crate::matcher::Matcher;

/// A rule file as it was read.
pub(super) struct LoadedFile {
    pub(super) path: PathBuf,
    pub(super) text: String,
}

/// Where a query source string ([`SrcId`]) came from: a YAML scalar of one
/// of the loaded files.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// Index into the loaded files.
    pub(super) file: usize,
    pub(super) node: Node,
}

/// Every enabled rule, compiled, plus what is needed to explain it.
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub matcher: Matcher,
    /// Rules present but `enabled: false`.
    pub disabled: usize,
    /// Short content hash of the loaded files: the `ruleset_info` version.
    pub version: String,
    pub loaded_at: DateTime<Utc>,
    pub files: Vec<PathBuf>,
    pub(super) files_text: Vec<LoadedFile>,
    pub(super) sources: Vec<Source>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("version", &self.version)
            .finish()
    }
}

impl RuleSet {
    pub fn rule_index(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// The source text a span points into.
    pub fn source_text(&self, src: SrcId, span: Span) -> &str {
        match self
            .sources
            .get(src.0 as usize)
            .and_then(|s| s.node.as_scalar())
        {
            Some(text) => text
                .get(span.start as usize..span.end as usize)
                .unwrap_or(text),
            None => "",
        }
    }

    /// `FILE:LINE:COL` of a span.
    pub fn locate(&self, src: SrcId, span: Span) -> String {
        match self.sources.get(src.0 as usize) {
            Some(s) => {
                let f = &self.files_text[s.file];
                let p = yaml::value_offset_to_pos(&f.text, &s.node, span.start as usize);
                format!("{}:{}:{}", f.path.display(), p.line, p.col)
            }
            None => "?".into(),
        }
    }
}
