//! The pure pipeline shared by every command: bytes → event → matches →
//! (state) → alerts.
//!
//! `replay`, `test` and the daemon all go through [`Engine`], so the alerts
//! they produce for the same input are the same, byte for byte. Matching is
//! split in two stages, the shape of the daemon's two stages:
//! [`Engine::stage`] (pure, any thread, any instance) matches an event,
//! builds the alerts of stateless rules and a [`MatchRecord`] for each match
//! of a stateful rule; [`Engine::decide`] (one thread per state partition,
//! in partition order) passes a match record through the [`Store`]. The
//! daemon moves match records between the two through Kafka; `replay` and
//! `test` call [`Engine::settle`], which decides them at once, in input
//! order.

use chrono::{DateTime, Utc};

use crate::alert::{self, Alert};
use crate::event::{self, format_time, DecodeError, Event, EventFields};
use crate::matcher::{Match, Scratch};
use crate::rules::{AlertMode, RuleSet};
use crate::silence::SilenceSet;
use crate::state::story;
use crate::state::{self, Change, Decision, Input, MatchRecord, Store, MATCH_RECORD_VERSION};

/// A loaded rule set plus the event field mapping.
#[derive(Debug)]
pub struct Engine {
    pub rules: RuleSet,
    pub fields: EventFields,
}

/// One rule's match: an alert already, or a match record for the owner
/// of its state.
#[derive(Debug)]
pub enum Slot {
    /// The rule's index and its alert (boxed: an alert is large, and most
    /// slots of a busy rule set are alerts anyway).
    Ready(usize, Box<Alert>),
    /// A stateful rule's match, to be decided by [`Engine::decide`].
    Stateful(Box<MatchRecord>),
}

/// An event's matches after stage one.
#[derive(Debug, Default)]
pub struct Staged {
    /// In rule order.
    pub slots: Vec<Slot>,
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

    /// Stage one: match, build the alerts of stateless rules and the match
    /// records of stateful ones. `fallback_time` is the event time when
    /// `published_at` is missing (the Kafka timestamp in `run`); without
    /// either, [`Engine::decide`] uses the state's latest event time.
    pub fn stage(
        &self,
        ev: &Event,
        scratch: &mut Scratch,
        fallback_time: Option<DateTime<Utc>>,
    ) -> Staged {
        let matches = self.matches(ev, scratch);
        if matches.is_empty() {
            return Staged::default();
        }
        // A producer-supplied story id makes the signature unnecessary;
        // otherwise it is computed once per event, when a `first_seen` rule
        // matched.
        let need_sig = ev.story_id.as_deref().is_none_or(str::is_empty)
            && matches.iter().any(|m| {
                matches!(
                    self.rules.rules[m.rule as usize].mode,
                    AlertMode::FirstSeen { .. }
                )
            });
        let sig = if need_sig {
            story::signature(ev.title.as_deref(), ev.body.as_deref())
        } else {
            None
        };
        let time = ev.published_at.or(fallback_time);
        // What the event's alerts share, built once (an alert's event time
        // is `published_at`, else `fallback_time`, for both kinds of rule).
        let mut parts = alert::EventParts::new(ev, fallback_time);
        let slots = matches
            .into_iter()
            .map(|m| {
                let rule = &self.rules.rules[m.rule as usize];
                let group = state::group_of(rule, ev);
                if !state::is_stateful(rule) {
                    return Slot::Ready(m.rule as usize, Box::new(parts.build(rule, &m, group)));
                }
                let mut input =
                    Input::of(rule, ev, time.unwrap_or(DateTime::UNIX_EPOCH), sig.as_ref());
                input.time = time.map(|t| t.timestamp_millis());
                Slot::Stateful(Box::new(MatchRecord {
                    v: MATCH_RECORD_VERSION,
                    rule: rule.id.clone(),
                    fp: state::state_fingerprint(rule),
                    alert: parts.build(rule, &m, group.clone()),
                    group,
                    input,
                }))
            })
            .collect();
        Staged { slots }
    }

    /// Stage two, for one match record, in partition order: the decision
    /// and, when it fires, the alert (none for a digest rule: see
    /// [`Store::take_digests`] for the digests that closed). State changes are appended to
    /// `changes`. A record of a rule that is gone, or whose state-relevant
    /// definition changed since it matched, decides nothing.
    pub fn decide(
        &self,
        rec: MatchRecord,
        store: &mut Store,
        changes: &mut Vec<Change>,
    ) -> (Decision, Option<Alert>) {
        self.decide_with(rec, store, changes, None)
    }

    /// [`Engine::decide`], with silences applied after mode and throttle
    /// (the daemon: `silences` and the wall clock's `now`). `replay` and
    /// `test` apply none.
    pub fn decide_with(
        &self,
        mut rec: MatchRecord,
        store: &mut Store,
        changes: &mut Vec<Change>,
        silences: Option<(&SilenceSet, DateTime<Utc>)>,
    ) -> (Decision, Option<Alert>) {
        let Some(rule) = self.rules.rules.iter().find(|r| r.id == rec.rule) else {
            return (Decision::default(), None);
        };
        if state::state_fingerprint(rule) != rec.fp {
            return (Decision::default(), None);
        }
        let t = rec
            .input
            .time
            .or_else(|| store.watermark().map(|t| t.timestamp_millis()))
            .unwrap_or(0);
        rec.input.time = Some(t);
        let mut d = store.apply(rule, &rec.input, &rec.group, changes);
        if let Some((set, now)) = silences.filter(|_| d.fire) {
            let silenced = set.silenced(&rule.id, &rule.labels, &rec.group, now);
            store.silence(rule, &rec.input, &rec.group, silenced, &mut d, changes);
        }
        if !d.fire {
            return (d, None);
        }
        let mut a = rec.alert;
        if a.event_time.is_none() {
            a.event_time = DateTime::from_timestamp_millis(t).map(|t| format_time(&t));
        }
        a.story = d.story.clone();
        a.count = d.count;
        a.sources = d.sources.clone();
        a.baseline = d.baseline;
        a.suppressed = d.suppressed;
        a.fit();
        if let Some(spec) = &rule.digest {
            // A digest rule's alert goes into its open digest instead;
            // closed digests are taken with `Store::take_digests`.
            store.add_to_digest(spec, rule.topic.as_deref(), &a, t, changes);
            return (d, None);
        }
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
        self.settle(staged, fallback_time, store, &mut Vec::new())
    }

    /// Stage two for every slot of an event, at once and in input order
    /// (`replay`, `test`): the daemon's result for one input partition.
    /// `fallback_time` stands in for a missing event time.
    pub fn settle(
        &self,
        staged: Staged,
        fallback_time: Option<DateTime<Utc>>,
        store: &mut Store,
        changes: &mut Vec<Change>,
    ) -> Vec<Alert> {
        let mut out = Vec::with_capacity(staged.slots.len());
        for slot in staged.slots {
            match slot {
                Slot::Ready(_, a) => out.push(*a),
                Slot::Stateful(mut rec) => {
                    if rec.input.time.is_none() {
                        rec.input.time = fallback_time.map(|t| t.timestamp_millis());
                        if let Some(t) = fallback_time {
                            rec.alert.event_time = Some(format_time(&t));
                        }
                    }
                    if let (_, Some(a)) = self.decide(*rec, store, changes) {
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
