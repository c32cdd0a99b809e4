//! Synthetic watch rules generated from a news corpus, shared by the
//! matcher bench (`crates/core/benches/matcher.rs`) and the load tool
//! (`tools/loadgen`). Deterministic: the same corpus and count give the same
//! rules.
//!
//! * [`Rng`]: a tiny deterministic xorshift64* generator;
//! * [`build_vocab`]: per-language words ranked by frequency (without the
//!   most frequent ones and without words in too many documents), with a
//!   Zipf sampler, plus 2-3 word n-grams seen in the text;
//! * [`gen_rules`]: `n` rules of varied shapes (terms, phrases, prefixes,
//!   lists, macros, NEAR/ONEAR, AND NOT, OR, case-sensitive terms, field
//!   scopes) and the shared lists and macros, as YAML files.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use newswatch_core::lang::text;

// ---------------------------------------------------------------- rng

/// xorshift64*: tiny, deterministic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 >= 1.0 - p
    }
}

// ---------------------------------------------------------------- vocabulary

pub const LANGS: [&str; 4] = ["en", "ru", "ko", "ja"];

/// Per-language words ranked by frequency, with a Zipf sampler.
pub struct Vocab {
    /// normalized word -> a surface form seen in text.
    words: Vec<(String, String)>,
    /// cumulative Zipf weights.
    cdf: Vec<f64>,
    /// word n-grams (2-3 words) seen in text, as surface forms.
    ngrams: Vec<String>,
}

impl Vocab {
    fn zipf(&self, rng: &mut Rng) -> &(String, String) {
        let total = *self.cdf.last().unwrap_or(&1.0);
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self
            .cdf
            .partition_point(|&c| c < x)
            .min(self.words.len() - 1);
        &self.words[i]
    }
}

fn usable(w: &str) -> bool {
    w.chars().all(char::is_alphabetic)
        && !matches!(w, "AND" | "OR" | "NOT")
        && !w.starts_with("NEAR")
        && !w.starts_with("ONEAR")
}

/// How [`build_vocab`] picks rule words.
pub struct VocabParams {
    /// the most frequent words skipped (stop words nobody watches for).
    pub skip_top: usize,
    /// P(rank r) ∝ 1/(r + zipf_offset).
    pub zipf_offset: f64,
    /// words in more than this many per mille of the documents are dropped;
    /// 1000 keeps every word.
    pub max_df_permille: f64,
}

impl VocabParams {
    /// The benches' held-out workload: the 200 most frequent words
    /// skipped, Zipf offset 10, words in more than 1% of documents dropped
    /// (watch rules name specific things). The matcher bench's
    /// `NW_BENCH_*` knobs start from these.
    pub const BENCH: VocabParams = VocabParams {
        skip_top: 200,
        zipf_offset: 10.0,
        max_df_permille: 10.0,
    };
}

/// One document: its language and its texts (title, body).
pub type DocText<'a> = (&'static str, [Option<&'a str>; 2]);

/// Rank words by frequency; skip the top `skip_top` and the words in too
/// many documents, and draw from the rest with a Zipf law. N-grams are kept
/// if they hold at least one word under the document-frequency cap.
pub fn build_vocab(docs: &[DocText<'_>], p: &VocabParams) -> HashMap<&'static str, Vocab> {
    let mut df: HashMap<String, usize> = HashMap::new();
    let mut counts: HashMap<&str, HashMap<String, (usize, String)>> = HashMap::new();
    let mut ngrams: HashMap<&str, Vec<String>> = HashMap::new();
    for (lang, texts) in docs {
        for t in texts.iter().flatten() {
            let ws = text::exact_words(t);
            // Document frequency, counted per field (close enough for a cap).
            let seen: HashSet<String> =
                ws.iter().map(|(_, _, w)| text::normalize_word(w)).collect();
            for w in seen {
                *df.entry(w).or_default() += 1;
            }
            let c = counts.entry(lang).or_default();
            for (_, _, surface) in &ws {
                if !usable(surface) {
                    continue;
                }
                let n = text::normalize_word(surface);
                let e = c.entry(n).or_insert((0, surface.clone()));
                e.0 += 1;
            }
            let g = ngrams.entry(lang).or_default();
            let mut i = 0;
            while i + 3 <= ws.len() {
                let k = if i % 2 == 0 { 2 } else { 3 };
                let win = &ws[i..i + k];
                if win.iter().all(|(_, _, s)| usable(s)) {
                    g.push(
                        win.iter()
                            .map(|(_, _, s)| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                i += 7;
            }
        }
    }
    let mut out = HashMap::new();
    for lang in LANGS {
        let Some(c) = counts.remove(lang) else {
            continue;
        };
        let mut v: Vec<(String, usize, String)> =
            c.into_iter().map(|(n, (k, s))| (n, k, s)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let skip = p.skip_top.min(v.len() / 10);
        let cap = (docs.len() as f64 * p.max_df_permille / 1000.0).max(1.0);
        let words: Vec<(String, String)> = v
            .into_iter()
            .skip(skip)
            .filter(|(n, _, _)| df.get(n).is_some_and(|&d| d as f64 <= cap))
            .map(|(n, _, s)| (n, s))
            .collect();
        if words.is_empty() {
            continue;
        }
        let mut acc = 0.0;
        let cdf = (0..words.len())
            .map(|r| {
                acc += 1.0 / (r as f64 + p.zipf_offset);
                acc
            })
            .collect();
        let mut g = ngrams.remove(lang).unwrap_or_default();
        g.retain(|ng| {
            text::words(ng)
                .iter()
                .any(|w| df.get(w).is_some_and(|&d| d as f64 <= cap))
        });
        g.sort();
        g.dedup();
        out.insert(
            lang,
            Vocab {
                words,
                cdf,
                ngrams: g,
            },
        );
    }
    out
}

// ---------------------------------------------------------------- rules

struct Gen<'a> {
    rng: Rng,
    vocab: &'a HashMap<&'static str, Vocab>,
    /// The languages with a vocabulary, English (if any) first.
    langs: Vec<&'static str>,
    /// The language of each shared list and macro, by number.
    list_lang: Vec<&'static str>,
    macro_lang: Vec<&'static str>,
}

impl Gen<'_> {
    fn lang(&mut self) -> &'static str {
        // 60% en, the rest evenly over the others that exist.
        if self.langs.len() == 1 || self.rng.chance(0.6) {
            return self.langs[0];
        }
        self.langs[1 + self.rng.below(self.langs.len() - 1)]
    }
    fn word(&mut self, lang: &str) -> String {
        self.vocab[lang].zipf(&mut self.rng).0.clone()
    }
    fn surface(&mut self, lang: &str) -> String {
        self.vocab[lang].zipf(&mut self.rng).1.clone()
    }
    fn phrase(&mut self, lang: &str) -> String {
        let v = &self.vocab[lang];
        if v.ngrams.is_empty() {
            return self.word(lang);
        }
        let i = self.rng.below(v.ngrams.len());
        format!("\"{}\"", v.ngrams[i])
    }
    /// A word or (for Japanese, whose words are single ideographs) a phrase.
    fn term(&mut self, lang: &str) -> String {
        if lang == "ja" || self.rng.chance(0.15) {
            self.phrase(lang)
        } else {
            self.word(lang)
        }
    }
    fn prefix(&mut self, lang: &str) -> String {
        let lang = if lang == "ja" { self.langs[0] } else { lang };
        for _ in 0..20 {
            let w = self.word(lang);
            let n = w.chars().count();
            if n >= 5 {
                let keep = (n - 2).max(3);
                return format!("{}*", w.chars().take(keep).collect::<String>());
            }
        }
        self.word(lang)
    }
}

/// What differs between the bench's rules and loadgen's.
pub struct Style {
    /// Directory prefix of the file names ("bench/" or "").
    pub dir: &'static str,
    /// Rule ids are `{id_prefix}{r:06}`, titles `{title} {r}`.
    pub id_prefix: &'static str,
    pub title: &'static str,
    /// At most this many rules per file (`rules-NNN.yaml`); 0: one
    /// `rules.yaml` (written even when `n` is 0).
    pub per_file: usize,
    /// Loadgen's rules: a severity and sometimes a desk label, no source
    /// filter. Otherwise the bench's: sometimes a source filter.
    pub severity_and_labels: bool,
    /// YAML for extra rules placed before the generated ones.
    pub extra_rules: &'static str,
}

impl Style {
    /// The benches' rules (`bench/rules-NNN.yaml`, ids `r-NNNNNN`).
    pub const BENCH: Style = Style {
        dir: "bench/",
        id_prefix: "r-",
        title: "Bench rule",
        per_file: 5000,
        severity_and_labels: false,
        extra_rules: "",
    };
}

/// YAML files: `shared.yaml` with the shared lists and macros, then the
/// rules. Needs a non-empty `vocab`.
pub fn gen_rules(
    n: usize,
    vocab: &HashMap<&'static str, Vocab>,
    style: &Style,
) -> Vec<(PathBuf, String)> {
    let langs: Vec<&'static str> = LANGS
        .iter()
        .copied()
        .filter(|l| vocab.contains_key(l))
        .collect();
    let mut g = Gen {
        rng: Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64),
        vocab,
        langs,
        list_lang: Vec::new(),
        macro_lang: Vec::new(),
    };
    let shared = g.shared((n / 100).max(10), (n / 200).max(5));
    let dir = style.dir;
    let mut files = vec![(PathBuf::from(format!("{dir}shared.yaml")), shared)];
    let mut cur = String::from(style.extra_rules);
    for r in 0..n {
        g.rule(r, style, &mut cur);
        if style.per_file > 0 && ((r + 1) % style.per_file == 0 || r + 1 == n) {
            let name = format!("{dir}rules-{:03}.yaml", files.len());
            files.push((PathBuf::from(name), format!("rules:\n{cur}")));
            cur.clear();
        }
    }
    if style.per_file == 0 {
        files.push((
            PathBuf::from(format!("{dir}rules.yaml")),
            format!("rules:\n{cur}"),
        ));
    }
    files
}

impl Gen<'_> {
    /// `n_lists` lists of names and `n_macros` macros (each in one
    /// language, remembered for the rules that use them), as YAML.
    fn shared(&mut self, n_lists: usize, n_macros: usize) -> String {
        let mut shared = String::from("lists:\n");
        for i in 0..n_lists {
            let lang = self.lang();
            self.list_lang.push(lang);
            let _ = writeln!(shared, "  names_{i}:");
            for _ in 0..self.rng.range(5, 20) {
                // Names: surface forms (often capitalised), some two-word names.
                let e = if self.rng.chance(0.3) {
                    self.phrase(lang).trim_matches('"').to_string()
                } else {
                    self.surface(lang)
                };
                let _ = writeln!(shared, "    - \"{e}\"");
            }
        }
        shared.push_str("macros:\n");
        for i in 0..n_macros {
            let lang = self.lang();
            self.macro_lang.push(lang);
            let k = self.rng.range(3, 8);
            let alts: Vec<String> = (0..k).map(|_| self.term(lang)).collect();
            let _ = writeln!(shared, "  m_{i}: '{}'", alts.join(" OR "));
        }
        shared
    }

    /// Rule number `r` as YAML, appended to `out`.
    fn rule(&mut self, r: usize, style: &Style, out: &mut String) {
        const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
        let lang = self.lang();
        let q = self.query(lang);
        let (id, title) = (style.id_prefix, style.title);
        let _ = writeln!(out, "  - id: {id}{r:06}\n    title: {title} {r}");
        if style.severity_and_labels {
            let _ = writeln!(out, "    severity: {}", SEVERITIES[self.rng.below(5)]);
        }
        let _ = writeln!(out, "    query: '{}'", q.replace('\'', "''"));
        if self.rng.chance(0.15) {
            let _ = writeln!(out, "    filter: 'lang:{lang}'");
        } else if !style.severity_and_labels && self.rng.chance(0.03) {
            let _ = writeln!(out, "    filter: 'source:Reuters OR source:Wikinews'");
        }
        if style.severity_and_labels && self.rng.chance(0.2) {
            let _ = writeln!(out, "    labels: {{desk: d{}}}", self.rng.below(8));
        }
    }

    /// A query in `lang` of a shape drawn with fixed odds: terms 18%,
    /// phrases 8%, prefixes 6%, lists 8%, macros 7%, NEAR 10%, ONEAR 5%,
    /// AND NOT 7%, OR 9%, AND 6%, case-sensitive terms 6%, title scopes 10%.
    fn query(&mut self, lang: &'static str) -> String {
        match self.rng.below(100) {
            0..=17 => self.term(lang),
            18..=25 => self.phrase(lang),
            26..=31 => self.prefix(lang),
            32..=39 => {
                let l = self.rng.below(self.list_lang.len());
                if self.rng.chance(0.5) {
                    format!("@names_{l}")
                } else {
                    let t = self.term(self.list_lang[l]);
                    format!("@names_{l} NEAR/{} {t}", self.rng.range(3, 15))
                }
            }
            40..=46 => {
                let m = self.rng.below(self.macro_lang.len());
                let t = self.term(self.macro_lang[m]);
                if self.rng.chance(0.5) {
                    format!("{t} AND $m_{m}")
                } else {
                    format!("{t} NEAR/{} $m_{m}", self.rng.range(3, 15))
                }
            }
            47..=56 => {
                let (a, b) = (self.term(lang), self.term(lang));
                format!("{a} NEAR/{} {b}", self.rng.range(1, 20))
            }
            57..=61 => {
                let (a, b) = (self.term(lang), self.term(lang));
                format!("{a} ONEAR/{} {b}", self.rng.range(1, 10))
            }
            62..=68 => {
                let (a, b) = (self.term(lang), self.term(lang));
                format!("{a} AND NOT {b}")
            }
            69..=77 => {
                let k = self.rng.range(2, 5);
                let alts: Vec<String> = (0..k).map(|_| self.term(lang)).collect();
                alts.join(" OR ")
            }
            78..=83 => {
                let (a, b) = (self.term(lang), self.term(lang));
                format!("{a} {b}")
            }
            84..=89 => {
                let w = self.surface(lang);
                if self.rng.chance(0.7) {
                    format!("{{{w}}}")
                } else {
                    let t = self.term(lang);
                    format!("{{{w}}} AND {t}")
                }
            }
            _ => {
                let t = self.term(lang);
                if self.rng.chance(0.5) {
                    format!("title:{t}")
                } else {
                    let u = self.term(lang);
                    format!("title:({t} OR {u}) AND {}", self.term(lang))
                }
            }
        }
    }
}
