//! Wildcard patterns in text (SPEC §5): `*` any run of characters, `?`
//! exactly one, within one word (`*stan`, `kim*un`, `wom?n`).
//!
//! A pattern goes through the same normalization as words, piece by piece,
//! so it matches the normalized words of [`crate::lang::text`]; matching
//! itself is the matcher's (`matcher::wild`). Invariant: a normalized
//! pattern holds at least [`MIN_WILD_LITERALS`] characters other than `*`
//! and `?`, and never two `*` in a row.
//!
//! Pure: no IO.

use crate::lang::query::MIN_WILD_LITERALS;
use crate::lang::text;

/// The characters of a raw pattern other than `*` and `?`.
pub fn literals(raw: &str) -> usize {
    raw.chars().filter(|&c| c != '*' && c != '?').count()
}

/// A text pattern as matched: each literal piece normalized like a word,
/// rejoined with its wildcards (runs of `*` collapse into one). A piece
/// must be one word, since a pattern matches within one word; and the
/// normalized pieces still need [`MIN_WILD_LITERALS`] characters.
pub fn normalize(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut literals = 0;
    let mut piece = String::new();
    let flush = |piece: &mut String, out: &mut String, literals: &mut usize| {
        if piece.is_empty() {
            return Ok(());
        }
        let words = text::words(piece);
        let [w] = &words[..] else {
            return Err(format!(
                "pattern {raw:?}: {piece:?} is not one word, and a pattern matches within one word"
            ));
        };
        *literals += w.chars().count();
        out.push_str(w);
        piece.clear();
        Ok(())
    };
    for c in raw.chars() {
        if c == '*' || c == '?' {
            flush(&mut piece, &mut out, &mut literals)?;
            if !(c == '*' && out.ends_with('*')) {
                out.push(c);
            }
        } else {
            piece.push(c);
        }
    }
    flush(&mut piece, &mut out, &mut literals)?;
    if literals < MIN_WILD_LITERALS {
        return Err(format!(
            "pattern {raw:?} normalizes to {out:?}: it needs at least {MIN_WILD_LITERALS} \
             characters besides '*' and '?'"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let table = [
            ("*stan", Ok("*stan")),
            ("Kim**Un", Ok("kim*un")),
            ("WOM?N", Ok("wom?n")),
            ("*ÉRIE", Ok("*erie")),
            ("*Ёжик", Ok("*ежик")),
            ("U.S.?A", Ok("us?a")),
            ("U.S?", Err("normalizes to \"us?\"")),
            ("*a-b*", Err("\"a-b\" is not one word")),
            ("*a b", Err("is not one word")),
        ];
        for (raw, want) in table {
            match (normalize(raw), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{raw}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{raw}: {got}"),
                (got, want) => panic!("{raw}: {got:?}, expected {want:?}"),
            }
        }
    }
}
