//! Cost per event of the "same story" detector (`newswatch_core::state::story`).
//!
//! * `signature/article_1.3KB`: `story::signature` on real Reuters articles
//!   of 1.1–1.5 KB (title + body), taken round-robin, and the same up to the
//!   shingle hashes only (`story::shingles`), to show what MinHash adds;
//! * `lookup/{1k,10k,100k}`: `LshIndex::candidates` plus `similarity` on
//!   every candidate, with 1,000, 10,000 and 100,000 stories indexed, in one
//!   run so the three can be compared. Half of the lookups are real articles
//!   that are not indexed (the usual case: a new story), half are articles
//!   that are (an exact repeat: at least one candidate);
//! * `lookup/scan_all_*`: for contrast, `similarity` against every story
//!   held, which is what the index avoids.
//!
//! The indexed stories are real articles from the corpus in
//! `NEWSWATCH_CORPUS` (about 24,000 with the five news corpora; else
//! `examples/news.jsonl`) and, beyond that, synthetic texts: 150 words drawn at random from
//! the corpus's words, which share no shingles with anything, as unrelated
//! news would not. A summary table at the end gives candidates per lookup
//! and the index's heap bytes per story (counting allocator).
//! Under `cargo test --benches` (no `--bench`) it runs a tiny smoke
//! configuration.
//!
//! # Results
//!
//! This is the one place these timings are written down. Cost per event
//! (criterion, `cargo bench -p newswatch-core --bench story`; a 2-core
//! machine shared with other builds, so the ranges are over runs):
//!
//! | | 1k stories | 10k stories | 100k stories |
//! |---|---:|---:|---:|
//! | lookup + verification (`candidates` + `similarity`) | 0.5–0.7 µs | 0.8–2.1 µs | 1.1–2.6 µs |
//! | comparing with every story instead | 17–19 µs | 148–167 µs | 1.1–1.2 ms |
//! | candidates per lookup | 0.58 | 0.66 | 0.90 |
//! | index heap bytes per story | 1,683 | 1,357 | 2,105 |
//!
//! `signature` takes 24–48 µs for a 1.3 KB article: about 10 µs to segment,
//! normalize and hash the words, the rest for 128 multiply-add-shifts on
//! each of its ~200 shingles; it is computed once per event. A lookup does
//! the same 42 probes at every size; what grows between 1k and 100k stories
//! is cache misses once the table outgrows the CPU caches, not work per
//! story (the candidates grow only because more real near-duplicates are
//! indexed). The index costs 42 bucket entries of 24 bytes per story in a
//! hash table at most seven-eighths full, on top of the 512-byte signature
//! the engine keeps.

use std::cell::RefCell;
use std::time::Duration;

use criterion::{black_box, criterion_group, Criterion, Throughput};
use newswatch_core::state::story::{self, LshIndex, Signature, DEFAULT_SIMILARITY};
use serde::Deserialize;

use newswatch_testkit::alloc::{live, CountingAlloc};
use newswatch_testkit::corpus::Corpus;
use newswatch_testkit::rulegen::Rng;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------- corpus

#[derive(Deserialize)]
struct Article {
    title: Option<String>,
    body: Option<String>,
}

/// Every article of the corpus. Panics when `NEWSWATCH_CORPUS` names no
/// usable directory.
fn load_articles() -> Vec<Article> {
    let corpus = Corpus::locate(None).unwrap_or_else(|e| panic!("story bench: {e}"));
    eprintln!("corpus: {}", corpus.origin);
    let mut out = Vec::new();
    for f in &corpus.files {
        let lines = f.lines().unwrap_or_else(|e| panic!("story bench: {e}"));
        out.extend(lines.iter().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

// ---------------------------------------------------------------- benches

struct Row {
    stories: usize,
    cand_per_lookup: f64,
    index_bytes_per_story: f64,
    ns_per_lookup: f64,
}

thread_local! {
    static ROWS: RefCell<Vec<Row>> = const { RefCell::new(Vec::new()) };
    static SIG_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
}

/// Title plus body bytes.
fn text_len(a: &Article) -> usize {
    a.title.as_deref().map_or(0, str::len) + a.body.as_deref().map_or(0, str::len)
}

/// `signature()` on articles of 1.1–1.5 KB, and the same up to the shingle
/// hashes only.
fn bench_signature(c: &mut Criterion, articles: &[Article]) {
    let sized: Vec<&Article> = articles
        .iter()
        .filter(|a| (1100..=1500).contains(&text_len(a)))
        .take(500)
        .collect();
    let sized: Vec<&Article> = if sized.is_empty() {
        articles.iter().take(100).collect()
    } else {
        sized
    };
    let mean_bytes = sized.iter().map(|a| text_len(a)).sum::<usize>() / sized.len();
    let mut g = c.benchmark_group("signature");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("article_1.3KB", |b| {
        b.iter(|| {
            let a = sized[i % sized.len()];
            i += 1;
            black_box(story::signature(a.title.as_deref(), a.body.as_deref()))
        })
    });
    // The same articles up to the shingle hashes only (tokenizing,
    // normalizing, hashing, plus a sort): what the MinHash loop adds.
    let mut j = 0;
    let mut sh = Vec::new();
    g.bench_function("article_1.3KB_shingles_only", |b| {
        b.iter(|| {
            let a = sized[j % sized.len()];
            j += 1;
            story::shingles(
                a.title.as_deref(),
                a.body.as_deref(),
                story::SHINGLE_WORDS,
                &mut sh,
            );
            black_box(sh.len())
        })
    });
    g.finish();
    SIG_BYTES.with(|s| s.set(mean_bytes));
}

/// What the lookups run against.
struct Stories {
    /// Real articles first, then synthetic texts, `max_n` in all.
    all: Vec<Signature>,
    /// How many of `all` are real articles.
    real: usize,
    /// Every 25th real article, never indexed: lookups of new stories.
    held_out: Vec<Signature>,
}

/// The stories to index: real articles, then synthetic unrelated texts (150
/// words drawn from the corpus's words) up to `max_n`.
fn stories(articles: &[Article], max_n: usize, rng: &mut Rng) -> Stories {
    let mut real: Vec<Signature> = Vec::new();
    let mut held_out: Vec<Signature> = Vec::new();
    let sigs = articles
        .iter()
        .filter_map(|a| story::signature(a.title.as_deref(), a.body.as_deref()));
    for (i, s) in sigs.enumerate() {
        if i % 25 == 0 {
            held_out.push(s);
        } else {
            real.push(s);
        }
    }
    let vocab: Vec<&str> = articles
        .iter()
        .filter_map(|a| a.body.as_deref())
        .flat_map(str::split_whitespace)
        .take(2_000_000)
        .collect();
    let n_real = real.len();
    let mut all: Vec<Signature> = real.into_iter().take(max_n).collect();
    let mut text = String::new();
    while all.len() < max_n {
        text.clear();
        for _ in 0..150 {
            text.push_str(vocab[rng.below(vocab.len())]);
            text.push(' ');
        }
        if let Some(s) = story::signature(None, Some(&text)) {
            all.push(s);
        }
    }
    Stories {
        all,
        real: n_real,
        held_out,
    }
}

/// Lookups with the first `n` stories indexed: candidates plus verification,
/// and for contrast a scan of every story.
fn bench_lookup(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
    st: &Stories,
    rng: &mut Rng,
) -> Row {
    let stories = &st.all;
    let before = live();
    let mut idx: LshIndex<u64> = LshIndex::new();
    for (k, s) in stories.iter().take(n).enumerate() {
        idx.insert(k as u64, s);
    }
    let index_bytes = live() - before;
    // Queries: alternately a held-out article and an indexed real one.
    let indexed_real = n.min(st.real);
    let queries: Vec<&Signature> = (0..2_000)
        .map(|i| {
            if i % 2 == 0 {
                &st.held_out[(i / 2) % st.held_out.len()]
            } else {
                &stories[rng.below(indexed_real)]
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut cands = 0usize;
    for q in &queries {
        idx.candidates(q, &mut out);
        cands += out.len();
    }
    let mut i = 0;
    let mut ns = 0.0;
    g.bench_function(format!("{}k_stories", n / 1000), |b| {
        b.iter_custom(|iters| {
            let t = std::time::Instant::now();
            for _ in 0..iters {
                let q = queries[i % queries.len()];
                i += 1;
                idx.candidates(q, &mut out);
                let same = out
                    .iter()
                    .any(|&k| story::similarity(&stories[k as usize], q) >= DEFAULT_SIMILARITY);
                black_box(same);
            }
            let el = t.elapsed();
            ns = el.as_nanos() as f64 / iters.max(1) as f64;
            el
        })
    });
    // For contrast: comparing with every story held.
    let mut j = 0;
    g.bench_function(format!("scan_all_{}k_stories", n / 1000), |b| {
        b.iter(|| {
            let q = queries[j % queries.len()];
            j += 1;
            black_box(
                stories[..n]
                    .iter()
                    .any(|s| story::similarity(s, q) >= DEFAULT_SIMILARITY),
            )
        })
    });
    Row {
        stories: n,
        cand_per_lookup: cands as f64 / queries.len() as f64,
        index_bytes_per_story: index_bytes as f64 / n as f64,
        ns_per_lookup: ns,
    }
}

fn benches(c: &mut Criterion) {
    let mut articles = load_articles();
    if !bench_mode() {
        // Smoke test: enough to exercise every path, quick in debug builds.
        articles.truncate(3_000);
    }
    if articles.is_empty() {
        eprintln!("story bench skipped: no corpus");
        return;
    }
    bench_signature(c, &articles);
    let counts: Vec<usize> = if bench_mode() {
        vec![1_000, 10_000, 100_000]
    } else {
        vec![1_000]
    };
    let mut rng = Rng(0x5eed_5707_e5a1_0001);
    let st = stories(
        &articles,
        counts.iter().copied().max().unwrap_or(0),
        &mut rng,
    );
    let mut g = c.benchmark_group("lookup");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for &n in &counts {
        let row = bench_lookup(&mut g, n, &st, &mut rng);
        ROWS.with(|r| r.borrow_mut().push(row));
    }
    g.finish();
}

fn summary() {
    let bytes = SIG_BYTES.with(|s| s.get());
    if bytes > 0 {
        println!("\nsignature inputs: mean {bytes} bytes (title + body)");
    }
    ROWS.with(|rows| {
        let rows = rows.borrow();
        if rows.is_empty() {
            return;
        }
        println!(
            "\n| stories indexed | candidates per lookup | index heap bytes per story | last sample ns per lookup |"
        );
        println!("|---:|---:|---:|---:|");
        for r in rows.iter() {
            println!(
                "| {} | {:.2} | {:.0} | {:.0} |",
                r.stories, r.cand_per_lookup, r.index_bytes_per_story, r.ns_per_lookup
            );
        }
    });
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
