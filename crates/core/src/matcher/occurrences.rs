//! One event's occurrence index: its fields tokenized, every word looked up
//! once in the rule set's dictionary, and the hits sorted by pattern, so
//! that verification answers "where does pattern p occur" with a slice.

use std::cell::{Cell, RefCell};

use super::index::{WordEntry, NO_PAT};
use super::morph::{detect_event, event_lang, EventLang};
use super::{Matcher, Scratch, TextSpan, TITLE};
use crate::event::Event;
use crate::lang::compile::{PatId, TextScope};
use crate::lang::sentence::{self, Sentence};
use crate::lang::text::{self, Tokens};

/// A word-position range inside one field (token indices, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    pub(super) field: u8,
    pub(super) start: u32,
    pub(super) end: u32,
}

pub(super) fn occ_key(pat: PatId, field: u8, pos: u32) -> u64 {
    ((pat as u64) << 32) | ((field as u64) << 31) | (pos as u64 & 0x7fff_ffff)
}

/// A prepared event: its tokens and the occurrence index.
pub(super) struct Doc<'a> {
    pub(super) ev: &'a Event,
    pub(super) fields: &'a [Tokens; 2],
    pub(super) occ: &'a [u64],
    pub(super) pat_epoch: &'a [u32],
    pub(super) pat_range: &'a [(u32, u32)],
    pub(super) epoch: u32,
    pub(super) pool: RefCell<Vec<Vec<Hit>>>,
    /// Position comparisons made by NEAR and ONEAR so far (the work
    /// counter tests assert on; see `verify::near_join`).
    pub(super) comparisons: Cell<u64>,
    /// The event's language for `~`, and the detected one when `prepare`
    /// needed it.
    pub(super) lang: EventLang,
    /// The detected language for `lang:` filters, detected on first use
    /// (`None` until then).
    detected: Cell<Option<Option<&'static str>>>,
    /// The sentences of the title and body, computed when first needed
    /// (bit `f` of `sentences_ready`).
    pub(super) sentences: RefCell<[Vec<Sentence>; 2]>,
    pub(super) sentences_ready: Cell<u8>,
}

const FIELD_BIT: u64 = 1 << 31;

impl Doc<'_> {
    /// The language that stands in for a missing `lang` in `lang:`
    /// filters (SPEC §3); `None` when the event has a `lang`.
    pub(super) fn detected_lang(&self) -> Option<&'static str> {
        if self.ev.lang.is_some() {
            return None;
        }
        if let Some(d) = self.detected.get() {
            return d;
        }
        let d = self.lang.detected.or_else(|| detect_event(self.ev));
        self.detected.set(Some(d));
        d
    }

    /// The occurrence keys of `pat` (title ones first, then body), ascending.
    fn occ_of(&self, pat: PatId) -> &[u64] {
        match self.pat_epoch.get(pat as usize) {
            Some(&e) if e == self.epoch => {
                let (a, b) = self.pat_range[pat as usize];
                &self.occ[a as usize..b as usize]
            }
            _ => &[],
        }
    }

    /// The occurrence keys of `pat` in `field`; positions ascending.
    fn occ_in(&self, pat: PatId, field: u8) -> &[u64] {
        let s = self.occ_of(pat);
        if s.is_empty() {
            return s;
        }
        let mid = s.partition_point(|&k| k & FIELD_BIT == 0);
        if field == TITLE {
            &s[..mid]
        } else {
            &s[mid..]
        }
    }

    fn has(&self, pat: PatId, field: u8, pos: u32) -> bool {
        self.occ_of(pat)
            .binary_search(&occ_key(pat, field, pos))
            .is_ok()
    }

    fn phrase_at(&self, rest: &[PatId], field: u8, p: u32) -> bool {
        rest.iter()
            .enumerate()
            .all(|(i, &q)| self.has(q, field, p + 1 + i as u32))
    }

    /// Whether the word or phrase occurs at all (no allocation).
    pub(super) fn text_any(&self, scope: TextScope, pats: &[PatId]) -> bool {
        let Some((&first, rest)) = pats.split_first() else {
            return false;
        };
        if rest.is_empty() {
            return match scope {
                TextScope::Any => !self.occ_of(first).is_empty(),
                TextScope::Title | TextScope::Body => scope
                    .fields()
                    .iter()
                    .any(|&f| !self.occ_in(first, f).is_empty()),
            };
        }
        scope.fields().iter().any(|&f| {
            self.occ_in(first, f)
                .iter()
                .any(|&k| self.phrase_at(rest, f, (k & 0x7fff_ffff) as u32))
        })
    }

    pub(super) fn text_hits(&self, scope: TextScope, pats: &[PatId], out: &mut Vec<Hit>) {
        let Some((&first, rest)) = pats.split_first() else {
            return;
        };
        for &f in scope.fields() {
            for &k in self.occ_in(first, f) {
                let p = (k & 0x7fff_ffff) as u32;
                if self.phrase_at(rest, f, p) {
                    out.push(Hit {
                        field: f,
                        start: p,
                        end: p + rest.len() as u32,
                    });
                }
            }
        }
    }

    /// The sentences of `field`, segmented on first use in this event.
    pub(super) fn sentences(&self, field: u8) -> std::cell::Ref<'_, Vec<Sentence>> {
        let f = field as usize & 1;
        if self.sentences_ready.get() & (1 << f) == 0 {
            let text = if f == TITLE as usize {
                self.ev.title.as_deref()
            } else {
                self.ev.body.as_deref()
            };
            let mut all = self.sentences.borrow_mut();
            sentence::sentences(text.unwrap_or(""), self.fields[f].toks(), &mut all[f]);
            self.sentences_ready
                .set(self.sentences_ready.get() | (1 << f));
        }
        std::cell::Ref::map(self.sentences.borrow(), |all| &all[f])
    }

    pub(super) fn take_buf(&self) -> Vec<Hit> {
        self.pool.borrow_mut().pop().unwrap_or_default()
    }

    pub(super) fn give_buf(&self, mut v: Vec<Hit>) {
        v.clear();
        self.pool.borrow_mut().push(v);
    }

    pub(super) fn to_text_span(&self, h: Hit) -> TextSpan {
        let toks = self.fields[h.field as usize].toks();
        TextSpan {
            field: h.field,
            start: toks[h.start as usize].start,
            end: toks[h.end as usize].end,
        }
    }
}

impl Matcher {
    /// Tokenize the event and build its occurrence index in `s`; starts a
    /// new epoch for the per-rule and per-pattern stamps.
    pub(super) fn prepare(&self, ev: &Event, s: &mut Scratch) {
        if s.stamp.len() != self.rules.len() || s.pat_epoch.len() != self.dict.pats.len() {
            s.stamp = vec![0; self.rules.len()];
            s.pat_epoch = vec![0; self.dict.pats.len()];
            s.pat_range = vec![(0, 0); self.dict.pats.len()];
            s.epoch = 0;
        }
        s.epoch = s.epoch.wrapping_add(1);
        if s.epoch == 0 {
            s.stamp.iter_mut().for_each(|x| *x = 0);
            s.pat_epoch.iter_mut().for_each(|x| *x = 0);
            s.epoch = 1;
        }
        s.occ.clear();
        let texts = [
            ev.title.as_deref().unwrap_or(""),
            ev.body.as_deref().unwrap_or(""),
        ];
        let has_prefixes = !self.prefixes.is_empty();
        let has_wilds = !self.wilds.is_empty();
        let has_exacts = !self.dict.exacts.is_empty();
        let has_morph = !self.morph.is_empty();
        s.lang = if has_morph {
            event_lang(ev)
        } else {
            EventLang::default()
        };
        for (f, text) in texts.iter().enumerate() {
            let toks = &mut s.fields[f];
            toks.clear();
            toks.push_text(text);
            for (i, tok) in toks.toks().iter().enumerate() {
                let w = toks.norm(i);
                let pos = i as u32;
                let entry = self.words.get(w);
                if let Some(&WordEntry { pat, .. }) = entry {
                    if pat != NO_PAT {
                        s.occ.push(occ_key(pat, f as u8, pos));
                    }
                }
                if has_prefixes {
                    let occ = &mut s.occ;
                    self.prefixes
                        .for_each(w, |p| occ.push(occ_key(p, f as u8, pos)));
                }
                if has_morph {
                    let occ = &mut s.occ;
                    let seg = &text[tok.start as usize..tok.end as usize];
                    self.morph
                        .for_each(s.lang.analyzer, seg, w, &mut s.stems, |p| {
                            occ.push(occ_key(p, f as u8, pos))
                        });
                }
                if has_wilds {
                    let occ = &mut s.occ;
                    self.wilds
                        .for_each(w, &mut s.wild_seen, |p| occ.push(occ_key(p, f as u8, pos)));
                }
                if has_exacts {
                    let orig = &text[tok.start as usize..tok.end as usize];
                    // A simple word can only have the case-sensitive form of
                    // a pattern when its normalized form is that pattern's.
                    if !entry.is_some_and(|e| e.exact) && text::is_simple_word(orig) {
                        continue;
                    }
                    s.exact_buf.clear();
                    text::exact_form_into(orig, &mut s.exact_buf);
                    if let Some(&p) = self.dict.exacts.get(s.exact_buf.as_str()) {
                        s.occ.push(occ_key(p, f as u8, pos));
                    }
                }
            }
        }
        s.occ.sort_unstable();
        if has_morph {
            // Two stems of one word (Korean readings) may name one pattern.
            s.occ.dedup();
        }
        // The slice of `occ` of each pattern present.
        let mut i = 0;
        while i < s.occ.len() {
            let pat = (s.occ[i] >> 32) as usize;
            let mut j = i + 1;
            while j < s.occ.len() && (s.occ[j] >> 32) as usize == pat {
                j += 1;
            }
            s.pat_epoch[pat] = s.epoch;
            s.pat_range[pat] = (i as u32, j as u32);
            i = j;
        }
    }

    pub(super) fn doc<'a>(&self, ev: &'a Event, s: &'a mut Scratch) -> Doc<'a> {
        Doc {
            ev,
            fields: &s.fields,
            occ: &s.occ,
            pat_epoch: &s.pat_epoch,
            pat_range: &s.pat_range,
            epoch: s.epoch,
            pool: RefCell::new(std::mem::take(&mut s.pool)),
            comparisons: Cell::new(0),
            lang: s.lang,
            detected: Cell::new(None),
            sentences: RefCell::new(std::mem::take(&mut s.sentences)),
            sentences_ready: Cell::new(0),
        }
    }
}
