//! The tokenizer per script: `Tokens::push_text` (title and body of each
//! article) over each corpus file in `NEWSWATCH_CORPUS` (else
//! `examples/news.jsonl`), against the way it segmented before the
//! non-ASCII fast path (`text::reference::push_text_unicode`: ASCII
//! chunks through the ASCII scanner, every other chunk through
//! unicode-segmentation; normalization the same). Throughput in bytes of
//! text. Results: see ARCHITECTURE.md, section Performance. Run with
//! `cargo bench -p newswatch-core --bench text`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use newswatch_core::lang::text::{reference, Tokens};
use newswatch_testkit::corpus::Corpus;

fn texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| {
            ["title", "body"].map(|k| v.get(k).and_then(|t| t.as_str()).map(str::to_owned))
        })
        .flatten()
        .take(3000)
        .collect()
}

fn bench(c: &mut Criterion) {
    let corpus = Corpus::locate(None).expect("corpus");
    let mut g = c.benchmark_group("text");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    for f in &corpus.files {
        let texts = texts(&f.lines().expect("corpus lines"));
        let bytes: usize = texts.iter().map(String::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        let mut t = Tokens::new();
        g.bench_function(format!("{}/fast", f.name()), |b| {
            b.iter(|| {
                for x in &texts {
                    t.clear();
                    t.push_text(x);
                    black_box(t.len());
                }
            })
        });
        g.bench_function(format!("{}/unicode", f.name()), |b| {
            b.iter(|| {
                for x in &texts {
                    t.clear();
                    reference::push_text_unicode(&mut t, x);
                    black_box(t.len());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
