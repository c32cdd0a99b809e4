//! The pure pipeline shared by every command: bytes → event → matches → alerts.
//!
//! `replay`, `test` and (later) the daemon all go through [`Engine`], so the
//! alerts they produce for the same input are the same, byte for byte.

use chrono::{DateTime, Utc};

use crate::alert::{self, Alert};
use crate::event::{self, DecodeError, Event, EventFields};
use crate::matcher::{Match, Scratch};
use crate::rules::RuleSet;

/// A loaded rule set plus the event field mapping.
#[derive(Debug)]
pub struct Engine {
    pub rules: RuleSet,
    pub fields: EventFields,
}

impl Engine {
    pub fn new(rules: RuleSet, fields: EventFields) -> Self {
        Engine { rules, fields }
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Event, DecodeError> {
        event::decode(bytes, &self.fields)
    }

    /// Every rule that matches `ev`, in rule order.
    pub fn matches(&self, ev: &Event, scratch: &mut Scratch) -> Vec<Match> {
        let mut out = Vec::new();
        self.rules.matcher.match_event(ev, scratch, &mut out);
        out
    }

    /// The alerts for `ev`. `fallback_time` is used as event time when the
    /// event has no usable `published_at` (SPEC §3).
    pub fn alerts(
        &self,
        ev: &Event,
        scratch: &mut Scratch,
        fallback_time: Option<DateTime<Utc>>,
    ) -> Vec<Alert> {
        self.matches(ev, scratch)
            .iter()
            .map(|m| alert::build(&self.rules.rules[m.rule as usize], ev, m, fallback_time))
            .collect()
    }
}
