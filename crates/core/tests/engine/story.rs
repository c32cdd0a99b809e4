//! The default "same story" setting on a small, credited sample of real
//! wire copy (`tests/data/story_sample.jsonl`, Reuters-21578; see
//! `tests/data/README.md`): six pairs that are one story (repeats,
//! corrections, updates, new headlines) and six that are not (template
//! reports, follow-ups, same company or topic). The full labelled
//! evaluation needs the corpus and runs as `crates/core/examples/story_eval.rs`.

use newswatch_core::state::story::{self, LshIndex, Signature, DEFAULT_SIMILARITY};
use serde::Deserialize;

#[derive(Deserialize)]
struct Text {
    id: String,
    title: Option<String>,
    body: Option<String>,
}

#[derive(Deserialize)]
struct Pair {
    label: String,
    reason: String,
    a: Text,
    b: Text,
}

fn sample() -> Vec<Pair> {
    include_str!("../../../../tests/data/story_sample.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad sample line {l:?}: {e}")))
        .collect()
}

fn sig(t: &Text) -> Signature {
    story::signature(t.title.as_deref(), t.body.as_deref())
        .unwrap_or_else(|| panic!("{} has no signature", t.id))
}

#[test]
fn default_similarity_classifies_the_sample() {
    let pairs = sample();
    assert_eq!(pairs.len(), 12);
    assert_eq!(pairs.iter().filter(|p| p.label == "same").count(), 6);
    let mut wrong = Vec::new();
    for p in &pairs {
        let s = story::similarity(&sig(&p.a), &sig(&p.b));
        let same = p.label == "same";
        println!(
            "{:9} {s:.3} {} / {} ({})",
            p.label, p.a.id, p.b.id, p.reason
        );
        if (s >= DEFAULT_SIMILARITY) != same {
            wrong.push(format!(
                "{} {} / {}: {s:.3} ({})",
                p.label, p.a.id, p.b.id, p.reason
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "misclassified at {DEFAULT_SIMILARITY}: {wrong:#?}"
    );
}

/// The way the rule engine uses it: every first version indexed, then each
/// second version looked up and verified. Positives find their own first
/// version; negatives find no story at or above the default.
#[test]
fn index_lookup_finds_the_first_version() {
    let pairs = sample();
    let firsts: Vec<Signature> = pairs.iter().map(|p| sig(&p.a)).collect();
    let mut idx = LshIndex::new();
    for (i, s) in firsts.iter().enumerate() {
        idx.insert(i as u64, s);
    }
    let mut out = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let s = sig(&p.b);
        idx.candidates(&s, &mut out);
        let hits: Vec<u64> = out
            .iter()
            .copied()
            .filter(|&k| story::similarity(&firsts[k as usize], &s) >= DEFAULT_SIMILARITY)
            .collect();
        let expected: Vec<u64> = if p.label == "same" {
            vec![i as u64]
        } else {
            vec![]
        };
        assert_eq!(hits, expected, "{} / {} ({})", p.a.id, p.b.id, p.reason);
    }
    for (i, s) in firsts.iter().enumerate() {
        idx.remove(i as u64, s);
    }
    assert!(idx.is_empty());
    assert_eq!(idx.bucket_count(), 0);
}
