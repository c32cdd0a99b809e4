//! Keyword comparisons (SPEC §5): `field:>0.5`, `>=`, `<`, `<=` and
//! `field:[A TO B]` (inclusive), on numbers and on RFC 3339 timestamps,
//! which compare as instants (`10:00+02:00` = `08:00Z`).
//!
//! The lexer parses the values ([`parse`]), so a bad one is reported at its
//! column; the matcher asks [`Cmp::holds`]. Invariants: numbers are finite
//! (NaN and infinities are refused), a range is not empty and its bounds
//! are of one kind, and values of different kinds never compare.
//!
//! Pure: no IO, and no input makes it panic.

use crate::lang::query::{err, SyntaxError};

/// A comparison value: a finite number, or an instant (seconds since the
/// epoch and nanoseconds) from an RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpValue {
    Num(f64),
    Time(i64, u32),
}

// Numbers are finite (the parser refuses NaN and infinities), so equality
// is an equivalence.
impl Eq for CmpValue {}

impl CmpValue {
    /// Parse a number or an RFC 3339 timestamp.
    pub fn parse(s: &str) -> Option<CmpValue> {
        if let Ok(n) = s.parse::<f64>() {
            return n.is_finite().then_some(CmpValue::Num(n));
        }
        CmpValue::parse_time(s)
    }

    pub fn parse_time(s: &str) -> Option<CmpValue> {
        let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
        Some(CmpValue::Time(t.timestamp(), t.timestamp_subsec_nanos()))
    }

    /// Order of two values of the same kind; `None` across kinds.
    pub fn compare(self, other: CmpValue) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (CmpValue::Num(a), CmpValue::Num(b)) => a.partial_cmp(&b),
            (CmpValue::Time(a, an), CmpValue::Time(b, bn)) => Some((a, an).cmp(&(b, bn))),
            _ => None,
        }
    }
}

/// A keyword comparison: `>v`, `>=v`, `<v`, `<=v`, `[lo TO hi]` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt(CmpValue),
    Ge(CmpValue),
    Lt(CmpValue),
    Le(CmpValue),
    Range(CmpValue, CmpValue),
}

impl Cmp {
    /// Whether a field value satisfies the comparison; values of the other
    /// kind (a number against a timestamp) never do.
    pub fn holds(&self, x: CmpValue) -> bool {
        use std::cmp::Ordering::*;
        match *self {
            Cmp::Gt(v) => x.compare(v) == Some(Greater),
            Cmp::Ge(v) => matches!(x.compare(v), Some(Greater | Equal)),
            Cmp::Lt(v) => x.compare(v) == Some(Less),
            Cmp::Le(v) => matches!(x.compare(v), Some(Less | Equal)),
            Cmp::Range(lo, hi) => {
                matches!(x.compare(lo), Some(Greater | Equal))
                    && matches!(x.compare(hi), Some(Less | Equal))
            }
        }
    }

    /// Whether it compares timestamps (else numbers).
    pub fn on_time(&self) -> bool {
        let (Cmp::Gt(v) | Cmp::Ge(v) | Cmp::Lt(v) | Cmp::Le(v) | Cmp::Range(v, _)) = *self;
        matches!(v, CmpValue::Time(..))
    }
}

/// `>v`, `>=v`, `<v`, `<=v` or `[a TO b]`, starting at byte `start`.
pub(crate) fn parse(w: &str, start: usize) -> Result<Cmp, SyntaxError> {
    let end = start + w.len();
    let value = |v: &str, at: usize| -> Result<CmpValue, SyntaxError> {
        match CmpValue::parse(v) {
            Some(x) => Ok(x),
            None => err(
                at,
                at + v.len(),
                format!("bad comparison value {v:?}: expected a number or an RFC 3339 timestamp"),
            ),
        }
    };
    for (op, make) in [
        (">=", Cmp::Ge as fn(CmpValue) -> Cmp),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ] {
        if let Some(v) = w.strip_prefix(op) {
            return Ok(make(value(v, start + op.len())?));
        }
    }
    let inner = w
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .filter(|x| !x.contains(['[', ']']));
    let Some(inner) = inner else {
        return err(start, end, "a range is written [A TO B]");
    };
    let parts: Vec<(usize, &str)> = inner
        .split_whitespace()
        .map(|p| (p.as_ptr() as usize - w.as_ptr() as usize, p))
        .collect();
    let [(lo_at, lo), (to_at, "TO"), (hi_at, hi)] = parts[..] else {
        let at = parts.get(1).map_or(start, |&(i, _)| start + i);
        return err(
            at,
            end,
            "a range is written [A TO B], with TO in upper case",
        );
    };
    let _ = to_at;
    let (a, b) = (value(lo, start + lo_at)?, value(hi, start + hi_at)?);
    match a.compare(b) {
        None => err(
            start,
            end,
            "a range compares two numbers or two timestamps, not one of each",
        ),
        Some(std::cmp::Ordering::Greater) => err(
            start,
            end,
            format!("empty range: {lo} is greater than {hi}"),
        ),
        Some(_) => Ok(Cmp::Range(a, b)),
    }
}
