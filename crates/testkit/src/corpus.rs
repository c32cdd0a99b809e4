//! News corpora for the benches and tools: a directory of JSON-lines files
//! (one article a line, the daemon's input format), named by an option or
//! by the environment variable [`ENV`], else the repository's own
//! `examples/news.jsonl`.
//!
//! The larger corpora (Reuters-21578, Wikinews in four languages) are not in
//! the repository: their licences allow research use, not redistribution.
//! A machine that has them points [`ENV`] at their directory.
//!
//! A file's language comes from its name: a last `-xx` before `.jsonl` that
//! is one of [`LANGS`] (`wikinews-ko.jsonl` is Korean); anything else is
//! English. A directory that is named but holds no `*.jsonl` is an error,
//! not a silent fallback: a bench run on the wrong data would mislead.

use std::path::{Path, PathBuf};

use crate::rulegen::LANGS;

/// The environment variable naming the corpus directory.
pub const ENV: &str = "NEWSWATCH_CORPUS";

/// Why no corpus could be found or read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("corpus directory {0} does not exist (set {ENV} or the option to a directory of *.jsonl files)")]
    NoDirectory(PathBuf),
    #[error("corpus directory {0} holds no *.jsonl file")]
    Empty(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One corpus file and the language of its articles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFile {
    pub path: PathBuf,
    pub lang: &'static str,
}

impl CorpusFile {
    /// The file's name (without its directory).
    pub fn name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }

    /// Its non-empty lines.
    pub fn lines(&self) -> Result<Vec<String>, CorpusError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| CorpusError::Read {
            path: self.path.clone(),
            source,
        })?;
        Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// The corpus files, sorted by name.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub files: Vec<CorpusFile>,
    /// Where they came from, for a note on stderr.
    pub origin: String,
}

impl Corpus {
    /// The `*.jsonl` files of `dir` if given, else of `$NEWSWATCH_CORPUS`,
    /// else the repository's `examples/news.jsonl`. A relative directory is
    /// taken from the current directory, else from the repository root
    /// (benches run in their crate's directory).
    pub fn locate(dir: Option<&Path>) -> Result<Corpus, CorpusError> {
        let named = dir.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let Some(dir) = named else {
            let path = crate::repo_root().join("examples/news.jsonl");
            return Ok(Corpus {
                files: vec![CorpusFile {
                    lang: lang_of(&path),
                    path,
                }],
                origin: format!("examples/news.jsonl ({ENV} not set)"),
            });
        };
        let dir = if dir.is_relative() && !dir.is_dir() {
            crate::repo_root().join(&dir)
        } else {
            dir
        };
        if !dir.is_dir() {
            return Err(CorpusError::NoDirectory(dir));
        }
        let entries = std::fs::read_dir(&dir).map_err(|source| CorpusError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<CorpusFile> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
            .map(|path| CorpusFile {
                lang: lang_of(&path),
                path,
            })
            .collect();
        if files.is_empty() {
            return Err(CorpusError::Empty(dir));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Corpus {
            files,
            origin: dir.display().to_string(),
        })
    }

    /// The file called `name`, if the corpus has it.
    pub fn file(&self, name: &str) -> Option<&CorpusFile> {
        self.files.iter().find(|f| f.name() == name)
    }
}

/// The language a file's name declares (`…-ru.jsonl`), else English.
pub fn lang_of(path: &Path) -> &'static str {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let suffix = stem.rsplit_once('-').map_or("", |(_, s)| s);
    LANGS.iter().copied().find(|l| *l == suffix).unwrap_or("en")
}

/// Up to `n` lines spread evenly over `lines` (every `len / n`-th).
pub fn spread(lines: &[String], n: usize) -> Vec<String> {
    if lines.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (lines.len() / n).max(1);
    lines.iter().step_by(step).take(n).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_the_file_name() {
        let check = |name: &str, expected: &str| {
            assert_eq!(lang_of(Path::new(name)), expected, "{name}");
        };
        check("reuters21578-en.jsonl", "en");
        check("nerel-wikinews-ru.jsonl", "ru");
        check("dir/wikinews-ko.jsonl", "ko");
        check("wikinews-ja.jsonl", "ja");
        check("news.jsonl", "en");
        check("wikinews-de.jsonl", "en");
    }

    #[test]
    fn spread_takes_every_step_th_line() {
        let lines: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let check = |n: usize, expected: &[&str]| {
            assert_eq!(spread(&lines, n), expected, "n = {n}");
        };
        check(0, &[]);
        check(2, &["0", "5"]);
        check(3, &["0", "3", "6"]);
        check(20, &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    }
}
