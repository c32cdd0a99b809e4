//! Load errors as `newswatch check` prints them: `FILE:LINE:COL: message`,
//! sorted by file and position.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a rule file, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Diagnostic {
    /// A problem with a whole file (it cannot be found or read).
    pub(super) fn file(path: &Path, message: String) -> Self {
        Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// The errors of a failed load, sorted by file and position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<Diagnostic>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
