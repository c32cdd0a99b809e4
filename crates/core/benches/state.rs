//! Cost per event of a `first_seen` decision (`state::Store::apply`) with
//! 1,000, 10,000 and 100,000 live stories held, side by side in one run.
//!
//! Each measured event is a syndicated copy of a story already held (a new
//! event id, the story's text under another outlet's dateline): the store
//! finds the story through the LSH index, verifies the similarity and grows
//! the story, which is the common path for a busy story. The text signature
//! is computed outside the timing (it is computed once per event, on the
//! matcher threads; the `story` bench measures it, see its results). Story
//! texts are 150 words drawn from a fixed vocabulary with a fixed seed, so
//! they share almost no word runs with each other.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use newswatch_core::event::{decode, Event, EventFields};
use newswatch_core::rules::{load_strs, Rule};
use newswatch_core::state::story::{signature, Signature};
use newswatch_core::state::{group_of, Input, Store};

const RULES: &str =
    "rules:\n- {id: fs, title: t, query: report, alert: {mode: first_seen, window: 24h}}\n";

fn text(seed: u64) -> String {
    let mut x = seed.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut words = Vec::with_capacity(150);
    for _ in 0..150 {
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 32;
        words.push(format!("w{}", x % 5000));
    }
    format!("report {}", words.join(" "))
}

fn event(id: &str, body: &str, t: DateTime<Utc>) -> Event {
    let j = serde_json::json!({"id": id, "body": body, "published_at": t.to_rfc3339()});
    decode(j.to_string().as_bytes(), &EventFields::default()).expect("valid event")
}

struct Setup {
    rule: Rule,
    store: Store,
    texts: Vec<String>,
    t0: DateTime<Utc>,
}

fn setup(stories: usize) -> Setup {
    let rs = load_strs(vec![(PathBuf::from("b.yaml"), RULES.to_owned())]).expect("rules");
    let rule = rs.rules[0].clone();
    let mut store = Store::new();
    let t0 = DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let mut texts = Vec::with_capacity(stories);
    let mut changes = Vec::new();
    for i in 0..stories {
        let body = text(i as u64);
        // All within an hour: nothing expires during the run.
        let t = t0 + TimeDelta::milliseconds((i as i64 * 3_600_000) / stories as i64);
        let ev = event(&format!("s{i}"), &body, t);
        let sig = signature(ev.title.as_deref(), ev.body.as_deref());
        let input = Input::of(&rule, &ev, t, sig.as_ref());
        let d = store.apply(&rule, &input, &group_of(&rule, &ev), &mut changes);
        assert!(d.fire, "story {i} must be new");
        changes.clear();
        texts.push(body);
    }
    Setup {
        rule,
        store,
        texts,
        t0,
    }
}

fn bench(c: &mut Criterion) {
    let sizes: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[1_000, 10_000, 100_000]
    } else {
        &[100]
    };
    let mut g = c.benchmark_group("first_seen_apply");
    g.measurement_time(Duration::from_secs(5));
    g.warm_up_time(Duration::from_secs(1));
    for &n in sizes {
        let mut s = setup(n);
        let t = s.t0 + TimeDelta::hours(2);
        let mut k = 0usize;
        let mut changes = Vec::new();
        g.bench_function(format!("{}k_stories", n / 1000), |b| {
            b.iter_batched(
                || {
                    k += 1;
                    let i = (k * 7919) % s.texts.len();
                    let body = format!("SEOUL (outlet {k}) - {}", s.texts[i]);
                    let ev = event(&format!("copy{k}"), &body, t);
                    let sig: Option<Signature> = signature(ev.title.as_deref(), ev.body.as_deref());
                    // What stage one puts in the match record.
                    (
                        Input::of(&s.rule, &ev, t, sig.as_ref()),
                        group_of(&s.rule, &ev),
                    )
                },
                |(input, group)| {
                    changes.clear();
                    let d = s.store.apply(&s.rule, &input, &group, &mut changes);
                    black_box(d)
                },
                BatchSize::SmallInput,
            )
        });
        let (stories, _) = s.store.sizes();
        assert_eq!(
            stories, n,
            "copies must join their stories, not open new ones"
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
