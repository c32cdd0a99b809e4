//! Silences in the state (SPEC §6, §10): after mode and throttle, a
//! silenced alert is held back and counted in its group's record, and the
//! next alert of the rule and group that passes carries that count in
//! `suppressed` (added to the throttle's). The count lives in the group's
//! changelog record, like the throttle's, so it survives restarts and moves.
//!
//! Whether a silence holds the alert back is the caller's question (the
//! silences and the wall clock are the daemon's); this only keeps the count.
//! Redelivery is idempotent as elsewhere: a held-back event is remembered
//! and held back again without counting, and the alert that carried the
//! count on carries the same count again.

use std::collections::BTreeMap;

use serde_json::Value;

use super::records::group_key;
use super::{state_fingerprint, Change, Decision, Input, Store, MAX_HELD};
use crate::rules::Rule;

impl Store {
    /// Apply a silence decision to `d`, a decision of [`Store::apply`] for
    /// the same match: `silenced` says whether a silence holds it back now.
    /// Does nothing to a decision that does not fire.
    pub fn silence(
        &mut self,
        rule: &Rule,
        input: &Input,
        group: &BTreeMap<String, Value>,
        silenced: bool,
        d: &mut Decision,
        changes: &mut Vec<Change>,
    ) {
        if !d.fire {
            return;
        }
        let gk = group_key(&rule.id, &state_fingerprint(rule), group);
        // Stored like every other id: hashed when long (`records.rs`).
        let eid = super::records::bounded_id(&input.event);
        let eid = eid.as_ref();
        let t = input.time.unwrap_or(0);
        if !silenced && !self.groups.contains_key(&gk) {
            // Nothing held back for this group: the common case, no write.
            return;
        }
        let g = self.group_entry(&gk, t);
        if g.muted.iter().any(|e| e == eid) {
            // Held back before, delivered again.
            d.fire = false;
            return;
        }
        if let Some((e, n)) = &g.released {
            if e == eid {
                d.suppressed += n;
                return;
            }
        }
        if silenced {
            // The throttle's count that this alert would have carried is
            // carried on by the next one that passes.
            g.silenced += d.suppressed + 1;
            g.muted.push(eid.to_owned());
            if g.muted.len() > MAX_HELD {
                g.muted.remove(0);
            }
            g.last = g.last.max(t);
            d.fire = false;
            d.silenced = true;
        } else if g.silenced > 0 {
            let n = std::mem::take(&mut g.silenced);
            g.released = Some((eid.to_owned(), n));
            d.suppressed += n;
        } else {
            return;
        }
        self.group_changed(&gk, changes);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::load_strs;
    use crate::state::{Decision, Input, Store};
    use std::collections::BTreeMap;

    /// Each step: (event id, minute, silenced now) → what is published
    /// (`id` or `id+N` for N suppressed, `-` for nothing).
    fn check(rules: &str, steps: &[(&str, i64, bool)], expected: &[&str]) {
        let rs = load_strs(vec![("r.yaml".into(), rules.to_owned())]).expect("rules load");
        let rule = &rs.rules[0];
        let group = BTreeMap::new();
        let mut store = Store::new();
        let mut got = Vec::new();
        for (e, min, silenced) in steps {
            let input = Input {
                event: (*e).to_owned(),
                time: Some(1_780_000_000_000 + min * 60_000),
                story_id: Some((*e).to_owned()),
                signature: None,
                text_key: None,
                value: None,
                no_distinct: false,
            };
            let mut changes = Vec::new();
            let mut d: Decision = store.apply(rule, &input, &group, &mut changes);
            store.silence(rule, &input, &group, *silenced, &mut d, &mut changes);
            got.push(match (d.fire, d.suppressed) {
                (false, _) => "-".to_owned(),
                (true, 0) => (*e).to_owned(),
                (true, n) => format!("{e}+{n}"),
            });
        }
        assert_eq!(got, expected, "{rules}");
    }

    #[test]
    fn silenced_alerts_are_carried_by_the_next_that_passes() {
        let each_throttled = "rules:\n- {id: r, title: t, query: x, throttle: 10m}\n";
        // Throttle first: e2 throttled (1), e3 passes the throttle but is
        // silenced (carries 1+1 on), e4 throttled (1), e5 passes both.
        check(
            each_throttled,
            &[
                ("e1", 0, false),
                ("e2", 1, false),
                ("e3", 20, true),
                ("e4", 21, true),
                ("e5", 40, false),
            ],
            &["e1", "-", "-", "-", "e5+3"],
        );
        let first_seen = "rules:\n- {id: r, title: t, query: x, alert: {mode: first_seen}}\n";
        check(
            first_seen,
            &[
                ("a", 0, true),
                ("b", 1, true),
                ("c", 2, false),
                ("d", 3, false),
            ],
            &["-", "-", "c+2", "d"],
        );
        // Redelivered: a held-back event stays held back without counting
        // again (even after the silence ended), and the alert that carried
        // the count carries it again.
        check(
            first_seen,
            &[
                ("a", 0, true),
                ("a", 0, true),
                ("a", 0, false),
                ("c", 2, false),
                ("c", 2, false),
                ("d", 3, false),
            ],
            &["-", "-", "-", "c+1", "c+1", "d"],
        );
    }

    #[test]
    fn the_count_survives_a_restore() {
        let rules = "rules:\n- {id: r, title: t, query: x, alert: {mode: first_seen}}\n";
        let rs = load_strs(vec![("r.yaml".into(), rules.to_owned())]).expect("rules load");
        let rule = &rs.rules[0];
        let group = BTreeMap::new();
        let input = |e: &str, min: i64| Input {
            event: e.to_owned(),
            time: Some(1_780_000_000_000 + min * 60_000),
            story_id: Some(e.to_owned()),
            signature: None,
            text_key: None,
            value: None,
            no_distinct: false,
        };
        let mut store = Store::new();
        let mut log = Vec::new();
        for (e, min) in [("a", 0), ("b", 1)] {
            let mut d = store.apply(rule, &input(e, min), &group, &mut log);
            store.silence(rule, &input(e, min), &group, true, &mut d, &mut log);
            assert!(!d.fire && d.silenced);
        }
        let mut restored = Store::new();
        for c in &log {
            restored
                .load(&c.key, c.value.as_deref())
                .expect("a change loads");
        }
        let mut changes = Vec::new();
        let mut d = restored.apply(rule, &input("c", 2), &group, &mut changes);
        restored.silence(rule, &input("c", 2), &group, false, &mut d, &mut changes);
        assert!(d.fire);
        assert_eq!(d.suppressed, 2);
    }
}
