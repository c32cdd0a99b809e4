//! Writes a generated rule set and the articles to match with it, for
//! measurements outside the benches (`tools/hyperscan/compare.py`, `replay`
//! timings): the matcher bench's workload, held-out vocabulary over the
//! Reuters corpus.
//!
//! ```sh
//! cargo run --release -p newswatch-loadgen --bin gen-rules -- \
//!     --corpus DIR --rules 10000 --docs 5000 --out gen-10k
//! ```
//!
//! `--out` gets `rules/` (YAML, 5,000 rules a file) and `events.jsonl`
//! (`--docs` articles). The rule words come from other articles than
//! those in `events.jsonl` (as `NW_BENCH_HELD_OUT=1`), skip the 200 most
//! frequent words and words in more than 1% of the articles.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use newswatch_testkit::corpus::{self, Corpus};
use newswatch_testkit::rulegen::{self, Style, VocabParams};

#[derive(Parser)]
struct Args {
    /// Corpus directory (else NEWSWATCH_CORPUS, else examples/).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// The corpus file to draw from.
    #[arg(long, default_value = "reuters21578-en.jsonl")]
    file: String,
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    #[arg(long, default_value_t = 5_000)]
    docs: usize,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let corpus = Corpus::locate(args.corpus.as_deref())?;
    let file = corpus
        .file(&args.file)
        .or_else(|| corpus.files.first())
        .context("no corpus file")?;
    let lines = file.lines()?;
    if lines.len() < 4 {
        bail!("{}: too few articles", file.name());
    }
    // Matched and vocabulary articles, disjoint: a third and two thirds of
    // an even spread, as the matcher bench draws them.
    let sample = corpus::spread(&lines, (args.docs * 3).min(lines.len()));
    let matched = args.docs.min(sample.len() / 2);
    let (docs, vocab_docs) = sample.split_at(matched);
    let values: Vec<serde_json::Value> = vocab_docs
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let texts: Vec<rulegen::DocText> = values
        .iter()
        .map(|v| {
            let t = |k: &str| v.get(k).and_then(|x| x.as_str());
            (file.lang, [t("title"), t("body")])
        })
        .collect();
    let vocab = rulegen::build_vocab(&texts, &VocabParams::BENCH);
    if vocab.is_empty() {
        bail!("no vocabulary");
    }
    let style = Style {
        dir: "",
        ..Style::BENCH
    };
    let rules_dir = args.out.join("rules");
    std::fs::create_dir_all(&rules_dir).with_context(|| rules_dir.display().to_string())?;
    for (name, yaml) in rulegen::gen_rules(args.rules, &vocab, &style) {
        let p = rules_dir.join(name);
        std::fs::write(&p, yaml).with_context(|| p.display().to_string())?;
    }
    let events = args.out.join("events.jsonl");
    std::fs::write(&events, docs.join("\n") + "\n").context("events.jsonl")?;
    eprintln!(
        "{} rules in {}, {} articles in {}",
        args.rules,
        rules_dir.display(),
        docs.len(),
        events.display()
    );
    Ok(())
}
