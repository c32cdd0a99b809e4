//! The pure pipeline shared by every command: bytes → event → matches →
//! (state) → alerts.
//!
//! `replay`, `test` and the daemon all go through [`Engine`], so the alerts
//! they produce for the same input are the same, byte for byte. Matching is
//! split in two stages so that it can run in parallel while state stays in
//! input order: [`Engine::stage`] (pure, any thread) matches an event and
//! builds the alerts of stateless rules; [`Engine::settle_one`] (one thread,
//! input order) passes each stateful match through the [`Store`].

use chrono::{DateTime, Utc};

use crate::alert::{self, Alert};
use crate::event::{self, DecodeError, Event, EventFields};
use crate::matcher::{Match, Scratch};
use crate::rules::{AlertMode, RuleSet};
use crate::state::story::{self, Signature};
use crate::state::{self, Change, Decision, Store};

/// A loaded rule set plus the event field mapping.
#[derive(Debug)]
pub struct Engine {
    pub rules: RuleSet,
    pub fields: EventFields,
}

/// One rule's match: an alert already, or waiting for the state store.
#[derive(Debug)]
pub enum Slot {
    /// The rule's index and its alert (boxed: an alert is large, and most
    /// slots of a busy rule set are alerts anyway).
    Ready(usize, Box<Alert>),
    Stateful {
        rule: usize,
        m: Match,
    },
}

/// An event's matches after stage one.
#[derive(Debug, Default)]
pub struct Staged {
    /// In rule order.
    pub slots: Vec<Slot>,
    /// The text signature, computed only when a `first_seen` rule matched.
    pub signature: Option<Box<Signature>>,
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

    /// Stage one: match, and build the alerts of stateless rules.
    /// `fallback_time` is the event time when `published_at` is missing.
    pub fn stage(
        &self,
        ev: &Event,
        scratch: &mut Scratch,
        fallback_time: Option<DateTime<Utc>>,
    ) -> Staged {
        let mut staged = Staged::default();
        let mut need_sig = false;
        for m in self.matches(ev, scratch) {
            let rule = &self.rules.rules[m.rule as usize];
            if state::is_stateful(rule) {
                need_sig |= matches!(rule.mode, AlertMode::FirstSeen { .. });
                staged.slots.push(Slot::Stateful {
                    rule: m.rule as usize,
                    m,
                });
            } else {
                let group = state::group_of(rule, ev);
                staged.slots.push(Slot::Ready(
                    m.rule as usize,
                    Box::new(alert::build(rule, ev, &m, fallback_time, group)),
                ));
            }
        }
        // A producer-supplied story id makes the signature unnecessary.
        if need_sig && ev.story_id.as_deref().is_none_or(str::is_empty) {
            staged.signature =
                story::signature(ev.title.as_deref(), ev.body.as_deref()).map(Box::new);
        }
        staged
    }

    /// Stage two, for one stateful match, in input order: the decision and,
    /// when it fires, the alert. State changes are appended to `changes`.
    #[allow(clippy::too_many_arguments)]
    pub fn settle_one(
        &self,
        ev: &Event,
        rule: usize,
        m: &Match,
        signature: Option<&Signature>,
        fallback_time: Option<DateTime<Utc>>,
        store: &mut Store,
        changes: &mut Vec<Change>,
    ) -> (Decision, Option<Alert>) {
        let r = &self.rules.rules[rule];
        let group = state::group_of(r, ev);
        let time = ev
            .published_at
            .or(fallback_time)
            .or_else(|| store.watermark())
            .unwrap_or(DateTime::UNIX_EPOCH);
        let d = store.apply(r, ev, &group, time, signature, changes);
        if !d.fire {
            return (d, None);
        }
        let mut a = alert::build(r, ev, m, Some(time), group);
        a.story = d.story.clone();
        a.count = d.count;
        a.sources = d.sources.clone();
        a.suppressed = d.suppressed;
        (d, Some(a))
    }

    /// Both stages for one event, in input order (`test`).
    pub fn alerts_with(
        &self,
        ev: &Event,
        scratch: &mut Scratch,
        fallback_time: Option<DateTime<Utc>>,
        store: &mut Store,
    ) -> Vec<Alert> {
        let staged = self.stage(ev, scratch, fallback_time);
        self.settle(ev, staged, fallback_time, store, &mut Vec::new())
    }

    /// Stage two for every slot of an event.
    pub fn settle(
        &self,
        ev: &Event,
        staged: Staged,
        fallback_time: Option<DateTime<Utc>>,
        store: &mut Store,
        changes: &mut Vec<Change>,
    ) -> Vec<Alert> {
        let mut out = Vec::with_capacity(staged.slots.len());
        for slot in staged.slots {
            match slot {
                Slot::Ready(_, a) => out.push(*a),
                Slot::Stateful { rule, m } => {
                    let sig = staged.signature.as_deref();
                    if let (_, Some(a)) =
                        self.settle_one(ev, rule, &m, sig, fallback_time, store, changes)
                    {
                        out.push(a);
                    }
                }
            }
        }
        out
    }

    /// The alerts for one event on its own, with empty state: stateless
    /// rules as they are, stateful ones as for a first event.
    pub fn alerts(
        &self,
        ev: &Event,
        scratch: &mut Scratch,
        fallback_time: Option<DateTime<Utc>>,
    ) -> Vec<Alert> {
        self.alerts_with(ev, scratch, fallback_time, &mut Store::default())
    }
}
