//! NEAR and ONEAR on a 1 MB event (issue 11): the matcher's worst case
//! before NEAR merged sorted positions, when every occurrence of one side
//! was compared with every occurrence of the other (1.3 s for one event).
//!
//! The event is about 150,000 words drawn from a small vocabulary, so every
//! rule word occurs thousands of times. One benchmark per rule shape, each a
//! rule set of one rule, timing `Matcher::match_event` (tokenizing included,
//! and the spans, since every shape matches):
//!
//! | shape | rule |
//! |---|---|
//! | `near` | `lavrov NEAR/5 minister` |
//! | `onear` | `lavrov ONEAR/5 minister` |
//! | `nested` | `(lavrov NEAR/3 minister) NEAR/10 moscow` |
//! | `lists` | `@people NEAR/5 @places` (4 words each) |
//! | `baseline` | `lavrov AND minister` (tokenizing and indexing alone) |
//!
//! Measured on the shared 2-core development machine (criterion's median;
//! "before" is the same bench against the all-pairs NEAR it replaced; the
//! spans found are the same). The target is well under 100 ms per shape.
//!
//! | shape | before | after | spans |
//! |---|---|---|---|
//! | `near` | 87 ms | 5.7 ms | 10,847 |
//! | `onear` | 81 ms | 5.5 ms | 6,409 |
//! | `nested` | 176 ms | 7.6 ms | 10,611 |
//! | `lists` | 657 ms | 21 ms | 56,042 |
//! | `baseline` | 7.0 ms | 5.6 ms | 19,874 |
//!
//! Run with `cargo bench -p newswatch-core --bench near`.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode};
use newswatch_core::event::{self, EventFields};
use newswatch_core::matcher::Scratch;
use newswatch_core::rules;

const LISTS: &str = r#"
lists:
  people: [lavrov, putin, "sergey lavrov", shoigu]
  places: [moscow, seoul, tokyo, "north korea"]
"#;

const SHAPES: [(&str, &str); 5] = [
    ("near", "lavrov NEAR/5 minister"),
    ("onear", "lavrov ONEAR/5 minister"),
    ("nested", "(lavrov NEAR/3 minister) NEAR/10 moscow"),
    ("lists", "@people NEAR/5 @places"),
    ("baseline", "lavrov AND minister"),
];

/// About 1 MB of words from a 16-word vocabulary (a fixed LCG, so every
/// run sees the same text).
fn body() -> String {
    const WORDS: [&str; 16] = [
        "lavrov", "minister", "moscow", "said", "the", "talks", "putin", "seoul", "sergey",
        "foreign", "north", "korea", "on", "tokyo", "shoigu", "warned",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut s = String::with_capacity(1_000_100);
    while s.len() < 1_000_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s.push_str(WORDS[(x >> 60) as usize]);
        s.push(' ');
    }
    s
}

fn bench(c: &mut Criterion) {
    let json = serde_json::json!({"id": "big", "title": "t", "body": body()}).to_string();
    let ev = event::decode(json.as_bytes(), &EventFields::default())
        .unwrap_or_else(|e| panic!("near bench: the event does not decode: {e:?}"));
    let mut g = c.benchmark_group("near_1mb");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, query) in SHAPES {
        let yaml = format!("{LISTS}rules:\n  - id: r\n    title: t\n    query: '{query}'\n");
        let rs = rules::load_strs(vec![(PathBuf::from("near.yaml"), yaml)])
            .unwrap_or_else(|e| panic!("near bench: {query}: {e:?}"));
        let mut scratch = Scratch::new();
        let mut out = Vec::new();
        rs.matcher.match_event(&ev, &mut scratch, &mut out);
        assert_eq!(out.len(), 1, "{name} must match");
        eprintln!("{name}: {} spans", out[0].spans.len());
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                rs.matcher
                    .match_event(black_box(&ev), &mut scratch, &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
