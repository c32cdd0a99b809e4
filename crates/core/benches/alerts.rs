//! The cost of building alerts when most events yield many (issue 12: at
//! 100k rules about 39 alerts per article, and their building dominated).
//!
//! Rules on frequent words of wire copy, so that an article of the corpus
//! (`NEWSWATCH_CORPUS`'s Reuters file, else `examples/news.jsonl`) matches
//! dozens of them; the matches are computed once, outside the timing. Then,
//! per article, every match becomes an alert:
//!
//! * `per_match`: each alert on its own, as before (the event's id, times
//!   and snippet computed again for each alert, and every alert serialized
//!   once to check its size), kept here as the reference;
//! * `per_event`: through one `alert::EventParts` per article (id, times,
//!   `event` object and snippets once per article, the size proved by a
//!   bound instead of a serialization), as `Engine::stage` does;
//! * `serialize`: `serde_json::to_vec` of the alerts, the payloads `run`
//!   publishes, for scale.
//!
//! The two ways give the same alerts, byte for byte (asserted before
//! timing). Results: module docs are not the place; see ARCHITECTURE.md,
//! section Performance. Run with `cargo bench -p newswatch-core --bench alerts`.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use newswatch_core::alert::{self, Alert, AlertEvent, AlertMatch, AlertRule, EventParts};
use newswatch_core::event::{self, format_time, Event, EventFields};
use newswatch_core::matcher::{field_name, Match, Scratch, TITLE};
use newswatch_core::rules::{self, Rule, RuleSet};
use newswatch_testkit::corpus::Corpus;

/// Frequent words of wire copy, and a few phrases and proximities on them.
const WORDS: &[&str] = &[
    "said", "the", "of", "and", "to", "in", "for", "it", "on", "is", "that", "by", "with", "its",
    "from", "at", "be", "was", "will", "mln", "pct", "dlrs", "year", "company", "shares", "inc",
    "corp", "billion", "reuters", "bank", "market", "new", "has", "he", "an", "would", "not",
    "also", "last", "share", "this", "which", "u.s.", "had", "were", "but", "they", "one",
];

fn rules() -> RuleSet {
    let mut y = String::from("rules:\n");
    for (i, w) in WORDS.iter().enumerate() {
        y += &format!("  - id: w{i}\n    title: Word {w}\n    query: '{w}'\n");
    }
    for (i, p) in [
        "\"said the\"",
        "said NEAR/5 company",
        "mln AND dlrs",
        "year OR pct",
    ]
    .iter()
    .enumerate()
    {
        y += &format!(
            "  - id: p{i}\n    title: Phrase {i}\n    severity: high\n    labels: {{desk: markets}}\n    query: '{p}'\n"
        );
    }
    rules::load_strs(vec![("bench.yaml".into(), y)]).expect("bench rules")
}

fn events() -> Vec<Event> {
    let corpus = Corpus::locate(None).expect("corpus");
    let file = corpus
        .file("reuters21578-en.jsonl")
        .unwrap_or(&corpus.files[0]);
    let lines = file.lines().expect("corpus lines");
    let fields = EventFields::default();
    lines
        .iter()
        .take(1000)
        .filter_map(|l| event::decode(l.as_bytes(), &fields).ok())
        .collect()
}

/// The alert as it was built before `EventParts`: everything per alert,
/// and the size checked by a serialization.
fn per_match(rule: &Rule, ev: &Event, m: &Match) -> Alert {
    let text = |f: u8| {
        if f == TITLE {
            ev.title.as_deref().unwrap_or("")
        } else {
            ev.body.as_deref().unwrap_or("")
        }
    };
    let group = BTreeMap::new();
    let mut a = Alert {
        schema: alert::SCHEMA.to_owned(),
        alert_id: alert::alert_id(&rule.id, &group, &ev.id_text()),
        rule: AlertRule {
            id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity.as_str().to_owned(),
            labels: rule.labels.clone(),
        },
        mode: rule.mode.name().to_owned(),
        group,
        event_time: ev.published_at.map(|t| format_time(&t)),
        event: AlertEvent {
            id: ev.id.clone(),
            title: ev.title.clone(),
            source: ev.source.clone(),
            url: ev.url.clone(),
            lang: ev.lang.clone(),
            published_at: ev.published_at.map(|t| format_time(&t)),
        },
        matches: m
            .spans
            .iter()
            .take(alert::MAX_MATCHES)
            .map(|s| AlertMatch {
                field: field_name(s.field).to_owned(),
                start: s.start,
                end: s.end,
                text: text(s.field)
                    .get(s.start as usize..s.end as usize)
                    .unwrap_or("")
                    .to_owned(),
            })
            .collect(),
        matches_omitted: m.spans.len().saturating_sub(alert::MAX_MATCHES) as u64,
        snippet: alert::snippet(ev, m.spans.first()),
        story: None,
        count: None,
        sources: None,
        baseline: None,
        suppressed: 0,
    };
    black_box(a.serialized_len());
    a.fit();
    a
}

fn bench(c: &mut Criterion) {
    let set = rules();
    let evs = events();
    let mut scratch = Scratch::default();
    let matched: Vec<(Event, Vec<Match>)> = evs
        .into_iter()
        .map(|ev| {
            let mut out = Vec::new();
            set.matcher.match_event(&ev, &mut scratch, &mut out);
            (ev, out)
        })
        .collect();
    let n_alerts: usize = matched.iter().map(|(_, m)| m.len()).sum();
    eprintln!(
        "{} articles, {} rules, {:.1} alerts per article",
        matched.len(),
        set.rules.len(),
        n_alerts as f64 / matched.len().max(1) as f64
    );
    let old = || -> Vec<Alert> {
        let mut out = Vec::with_capacity(n_alerts);
        for (ev, ms) in &matched {
            for m in ms {
                out.push(per_match(&set.rules[m.rule as usize], ev, m));
            }
        }
        out
    };
    let new = || -> Vec<Alert> {
        let mut out = Vec::with_capacity(n_alerts);
        for (ev, ms) in &matched {
            let mut parts = EventParts::new(ev, None);
            for m in ms {
                out.push(parts.build(&set.rules[m.rule as usize], m, BTreeMap::new()));
            }
        }
        out
    };
    let (a, b) = (old(), new());
    let bytes = |v: &[Alert]| -> Vec<Vec<u8>> {
        v.iter()
            .map(|a| serde_json::to_vec(a).expect("alert JSON"))
            .collect()
    };
    assert!(bytes(&a) == bytes(&b), "per-event alerts differ");

    let mut g = c.benchmark_group("alerts");
    g.throughput(Throughput::Elements(n_alerts as u64));
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("per_match", |bch| bch.iter(|| black_box(old())));
    g.bench_function("per_event", |bch| bch.iter(|| black_box(new())));
    g.bench_function("serialize", |bch| bch.iter(|| black_box(bytes(&b))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
