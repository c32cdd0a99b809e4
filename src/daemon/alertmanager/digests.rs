//! A digest (SPEC §6) as **one** Alertmanager alert: the labels of the
//! rule's alerts with `digest_id` in place of `alert_id`, a `summary` with
//! its count and period, and the titles of its first items. Its items stay
//! on Kafka; Alertmanager gets what a notification needs.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::{labels_of, non_empty, postable, PostableAlert};
use newswatch_core::alert::cut;
use newswatch_core::state::digest::Digest;

/// Item titles a digest's `titles` annotation lists, each cut to
/// [`DIGEST_TITLE_CHARS`] characters.
const DIGEST_TITLES: usize = 10;
const DIGEST_TITLE_CHARS: usize = 200;

/// Map a digest to one Alertmanager alert: labels as an alert's, with
/// `digest_id`; annotations `summary` (count and period), `title`,
/// `rule_title`, `period_start`, `period_end`, `count`, `omitted`, `late`,
/// and `titles` (the first items' titles, one a line). `startsAt` is the
/// period's end (when it was complete), unless later than `raised`.
pub fn digest_to_postable(d: &Digest, raised: DateTime<Utc>, now: DateTime<Utc>) -> PostableAlert {
    let labels = labels_of(&d.rule, ("digest_id", &d.digest_id));
    let mut annotations = BTreeMap::new();
    let (start, end) = (&d.period.start, &d.period.end);
    let summary = format!(
        "{} {} of {} from {start} to {end}{}",
        d.count,
        if d.count == 1 { "alert" } else { "alerts" },
        d.rule.title,
        if d.late > 0 {
            format!(" ({} late)", d.late)
        } else {
            String::new()
        },
    );
    annotations.insert("summary".to_owned(), summary);
    annotations.insert("title".to_owned(), d.rule.title.clone());
    annotations.insert("rule_title".to_owned(), d.rule.title.clone());
    annotations.insert("period_start".to_owned(), start.clone());
    annotations.insert("period_end".to_owned(), end.clone());
    annotations.insert("count".to_owned(), d.count.to_string());
    annotations.insert("omitted".to_owned(), d.omitted.to_string());
    annotations.insert("late".to_owned(), d.late.to_string());
    let titles: Vec<String> = d
        .items
        .iter()
        .take(DIGEST_TITLES)
        .filter_map(|i| non_empty(i.event.title.as_deref()))
        .map(|t| {
            let mut t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            cut(&mut t, DIGEST_TITLE_CHARS);
            t
        })
        .collect();
    if !titles.is_empty() {
        annotations.insert("titles".to_owned(), titles.join("\n"));
    }
    postable(labels, annotations, Some(end), raised, now)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{alert, t};
    use super::super::Item;
    use super::*;
    use newswatch_core::state::digest;

    /// A digest is one Alertmanager alert: the rule's labels and
    /// `digest_id`, a summary with the count, the first titles.
    #[test]
    fn digest_mapping() {
        let mut a = alert(
            &[("desk", "asia"), ("digest_id", "x")],
            Some("Lavrov  warns"),
            None,
        );
        let item = newswatch_core::state::digest::DigestItem::of(&a);
        a.event.title = None;
        let no_title = newswatch_core::state::digest::DigestItem::of(&a);
        let d = Digest {
            schema: digest::SCHEMA.into(),
            digest_id: "d1".into(),
            rule: a.rule.clone(),
            group: BTreeMap::new(),
            period: digest::Period {
                start: "2026-07-12T00:00:00Z".into(),
                end: "2026-07-13T00:00:00Z".into(),
            },
            count: 5,
            omitted: 3,
            late: 1,
            items: vec![item.clone(), no_title, item],
            topic: None,
        };
        let raised = t("2026-07-13T00:05:00Z");
        let p = digest_to_postable(&d, raised, raised);
        let labels: Vec<(&str, &str)> = p
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let id = a.rule.id.as_str();
        assert_eq!(
            labels,
            [
                ("alertname", id),
                ("desk", "asia"),
                ("digest_id", "d1"),
                ("severity", "high")
            ]
        );
        let ann = |k: &str| p.annotations.get(k).map(String::as_str);
        let summary = format!(
            "5 alerts of {} from 2026-07-12T00:00:00Z to 2026-07-13T00:00:00Z (1 late)",
            a.rule.title
        );
        assert_eq!(ann("summary"), Some(summary.as_str()));
        assert_eq!(ann("count"), Some("5"));
        assert_eq!(ann("omitted"), Some("3"));
        assert_eq!(ann("titles"), Some("Lavrov warns\nLavrov warns"));
        assert_eq!(p.starts_at, "2026-07-13T00:00:00.000Z");
        assert_eq!(p.generator_url, None);
        // The queue tells digests from alerts by their schema.
        let bytes = serde_json::to_vec(&d).unwrap();
        assert!(matches!(Item::parse(&bytes), Ok(Item::Digest(_))));
        let bytes = serde_json::to_vec(&a).unwrap();
        assert!(matches!(Item::parse(&bytes), Ok(Item::Alert(_))));
    }
}
