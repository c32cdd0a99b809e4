//! `~word` against plain words, side by side (issue 14): 1k generated rules
//! (the matcher bench's generator and workload), and the same 1k rules with
//! every plain word and phrase of every other rule's query written with `~`
//! (`a NEAR/5 "b c"` becomes `~a NEAR/5 ~"b c"`): half the rules use `~`.
//!
//! * `match/plain`, `match/tilde`: `Matcher::match_event` over the same
//!   document sample (events carry their `lang`), one warm `Scratch` as a
//!   matcher thread has; the target is tilde ≥ 80% of plain's throughput.
//! * `match/tilde_detected`: the same with `lang` removed from every event,
//!   so each is language-detected first.
//! * `compile/plain`, `compile/tilde`: YAML text to `RuleSet`; the target
//!   is no change.
//! * before them, `paired`: plain and tilde passes over the sample
//!   alternated 21 times, the median ratio of their throughputs (the shared
//!   machine's load drifts between criterion's groups; pairs see the same).
//!
//! # Results
//!
//! The one place they are written down. The shared 2-core machine was
//! heavily and unevenly loaded by other builds (absolute times vary 2x
//! from run to run; only side-by-side ratios mean anything). 2,080
//! documents from the five corpora (events carry `lang`), 1,000 rules;
//! matches: plain 6,855, tilde 8,495 (the `~` rules match 24% more, work
//! that verification and spans pay for), with detection 8,492.
//!
//! | measure | plain | tilde | tilde ÷ plain throughput |
//! |---|---:|---:|---:|
//! | match, criterion median (last run) | 94.7 ms | 113.5 ms | 0.83 |
//! | match, paired median of 21 alternated passes | | | 0.71 (quartiles 0.70–0.76) |
//! | match, lang removed (every event detected) | | 216 ms | 0.44 |
//! | compile 1k rules, criterion median | 5.86 ms | 6.91 ms | (+18%) |
//!
//! Earlier runs of the paired measure, with lighter filters, gave 0.72 to
//! 0.76: the target of 0.80 is met by criterion's medians in some runs and
//! missed by the paired measure, which is the steadier one. What is left
//! is in `Matcher::prepare` (the per-word head filter and the stem cache
//! probe for words that pass it). Detection costs about 50 µs per event
//! (`whatlang` over the title and 1 KiB of body) and runs only for events
//! without `lang` when the rules use `~` or `lang:`. Compile time: stems
//! are computed per language on the first event in it, not when rules
//! compile (computing them for all 19 analyzers at compile time had made
//! it 3x); what is left of the difference is the `~` terms' own parsing.
//!
//! Run with
//! `cargo bench -p newswatch-core --bench morph` (`NEWSWATCH_CORPUS` for
//! the news corpora, else `examples/news.jsonl`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode};
use newswatch_core::event::{self, Event, EventFields};
use newswatch_core::matcher::{Matcher, Scratch};
use newswatch_core::rules::{self, RuleSet};
use newswatch_testkit::corpus::{self, Corpus};
use newswatch_testkit::rulegen::{self, Style, Vocab, VocabParams};

const RULES: usize = 1_000;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// (documents to match, the vocabulary of the rules), from disjoint
/// samples of every corpus file.
fn workload() -> (Vec<Event>, HashMap<&'static str, Vocab>) {
    let per_file = if bench_mode() { 600 } else { 40 };
    let corpus = Corpus::locate(None).unwrap_or_else(|e| panic!("morph bench: {e}"));
    eprintln!("corpus: {}", corpus.origin);
    let decode = |l: &str| event::decode(l.as_bytes(), &EventFields::default()).ok();
    let (mut docs, mut vocab_events) = (Vec::new(), Vec::new());
    for f in &corpus.files {
        let lines = f.lines().unwrap_or_else(|e| panic!("morph bench: {e}"));
        for (i, l) in corpus::spread(&lines, per_file * 2).iter().enumerate() {
            if let Some(ev) = decode(l) {
                if i % 2 == 0 {
                    docs.push(ev);
                } else {
                    vocab_events.push((f.lang, ev));
                }
            }
        }
    }
    let texts: Vec<rulegen::DocText> = vocab_events
        .iter()
        .map(|(lang, e)| (*lang, [e.title.as_deref(), e.body.as_deref()]))
        .collect();
    let vocab = rulegen::build_vocab(&texts, &VocabParams::BENCH);
    (docs, vocab)
}

/// `~` before every plain word and phrase of a query; lists, macros,
/// prefixes, fields, operators and `{…}` stay as they are.
fn with_tilde(q: &str) -> String {
    let mut out = String::new();
    let mut it = q.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            '"' => {
                out.push_str("~\"");
                it.next();
                for c in it.by_ref() {
                    out.push(c);
                    if c == '"' {
                        break;
                    }
                }
            }
            '{' => {
                for c in it.by_ref() {
                    out.push(c);
                    if c == '}' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() || c == '(' || c == ')' => {
                out.push(c);
                it.next();
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = it.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        break;
                    }
                    w.push(c);
                    it.next();
                }
                let keep = matches!(w.as_str(), "AND" | "OR" | "NOT")
                    || w.starts_with("NEAR/")
                    || w.starts_with("ONEAR/")
                    || w.starts_with(['@', '$'])
                    || w.contains(['*', ':']);
                if !keep {
                    out.push('~');
                }
                out.push_str(&w);
            }
        }
    }
    out
}

/// The generated rule files, with `~` in every other rule when `tilde`.
fn rule_files(vocab: &HashMap<&'static str, Vocab>, tilde: bool) -> Vec<(PathBuf, String)> {
    let style = Style::BENCH;
    let mut files = rulegen::gen_rules(RULES, vocab, &style);
    if tilde {
        let mut n = 0;
        for (_, text) in files.iter_mut().skip(1) {
            let mut out = String::with_capacity(text.len() * 2);
            for line in text.lines() {
                match line.strip_prefix("    query: '") {
                    Some(_) if n % 2 == 1 => {
                        n += 1;
                        out.push_str(line);
                    }
                    Some(rest) => {
                        n += 1;
                        let q = rest.strip_suffix('\'').unwrap_or(rest).replace("''", "'");
                        out.push_str("    query: '");
                        out.push_str(&with_tilde(&q).replace('\'', "''"));
                        out.push('\'');
                    }
                    None => out.push_str(line),
                }
                out.push('\n');
            }
            *text = out;
        }
    }
    files
}

fn build(files: Vec<(PathBuf, String)>) -> RuleSet {
    rules::load_strs(files).unwrap_or_else(|e| panic!("morph bench: rules do not load:\n{e}"))
}

fn match_all(m: &Matcher, docs: &[Event], s: &mut Scratch) -> usize {
    let mut out = Vec::new();
    for d in docs {
        m.match_event(d, s, &mut out);
    }
    out.len()
}

fn bench(c: &mut Criterion) {
    let (docs, vocab) = workload();
    let undetected: Vec<Event> = docs
        .iter()
        .cloned()
        .map(|mut e| {
            e.lang = None;
            e
        })
        .collect();
    let plain_files = rule_files(&vocab, false);
    let tilde_files = rule_files(&vocab, true);
    let plain = build(plain_files.clone());
    let tilde = build(tilde_files.clone());
    let mut s = Scratch::new();
    eprintln!(
        "docs: {}; matches: plain {}, tilde {}, tilde with detection {}",
        docs.len(),
        match_all(&plain.matcher, &docs, &mut s),
        match_all(&tilde.matcher, &docs, &mut s),
        match_all(&tilde.matcher, &undetected, &mut s),
    );
    paired(&plain.matcher, &tilde.matcher, &docs);
    let mut g = c.benchmark_group("morph_1k/match");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if bench_mode() { 8 } else { 1 }));
    for (name, rs, docs) in [
        ("plain", &plain, &docs),
        ("tilde", &tilde, &docs),
        ("tilde_detected", &tilde, &undetected),
    ] {
        let mut s = Scratch::new();
        g.bench_function(name, |b| {
            b.iter(|| black_box(match_all(&rs.matcher, docs, &mut s)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("morph_1k/compile");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (name, files) in [("plain", &plain_files), ("tilde", &tilde_files)] {
        g.bench_function(name, |b| b.iter(|| black_box(build(files.clone()))));
    }
    g.finish();
}

/// Plain and tilde passes alternated, so that the load of a shared
/// machine, which drifts over seconds, weighs on both alike: the median of
/// the per-pair ratios tilde/plain time, printed to stderr.
fn paired(plain: &Matcher, tilde: &Matcher, docs: &[Event]) {
    let pairs = if bench_mode() { 21 } else { 3 };
    let (mut sp, mut st) = (Scratch::new(), Scratch::new());
    // warm both caches
    match_all(plain, docs, &mut sp);
    match_all(tilde, docs, &mut st);
    let mut ratios = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let time = |m: &Matcher, s: &mut Scratch| {
            let t = Instant::now();
            black_box(match_all(m, docs, s));
            t.elapsed().as_secs_f64()
        };
        let (p, t) = if i % 2 == 0 {
            let p = time(plain, &mut sp);
            (p, time(tilde, &mut st))
        } else {
            let t = time(tilde, &mut st);
            (time(plain, &mut sp), t)
        };
        ratios.push(p / t);
    }
    ratios.sort_by(f64::total_cmp);
    eprintln!(
        "paired: tilde throughput / plain throughput, median of {pairs} alternated pairs: {:.3} \
         (quartiles {:.3} .. {:.3})",
        ratios[pairs / 2],
        ratios[pairs / 4],
        ratios[3 * pairs / 4]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
