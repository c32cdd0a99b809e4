//! TEMPORARY stub of the same-story detector (replaced by the real module).

use std::collections::HashMap;
use std::hash::Hash;

pub const NUM_HASHES: usize = 64;
pub const DEFAULT_SIMILARITY: f64 = 0.5;
const BANDS: usize = 16;
const ROWS: usize = NUM_HASHES / BANDS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature(pub [u32; NUM_HASHES]);

impl Signature {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|v| format!("{v:08x}")).collect()
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != NUM_HASHES * 8 {
            return None;
        }
        let mut out = [0u32; NUM_HASHES];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u32::from_str_radix(s.get(i * 8..i * 8 + 8)?, 16).ok()?;
        }
        Some(Signature(out))
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

pub fn signature(title: Option<&str>, body: Option<&str>) -> Option<Signature> {
    let mut words: Vec<u64> = Vec::new();
    for t in [title, body].into_iter().flatten() {
        crate::text::for_each_word(t, |_, w| {
            let mut h = 0xcbf29ce484222325u64;
            for b in w.bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            words.push(h);
        });
    }
    if words.len() < 3 {
        return None;
    }
    let mut sig = [u32::MAX; NUM_HASHES];
    for w in words.windows(3) {
        let h = mix(w[0] ^ mix(w[1] ^ mix(w[2])));
        for (i, s) in sig.iter_mut().enumerate() {
            let v = (mix(h ^ (i as u64).wrapping_mul(0x9e3779b97f4a7c15)) >> 32) as u32;
            *s = (*s).min(v);
        }
    }
    Some(Signature(sig))
}

pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.0.iter().zip(b.0.iter()).filter(|(x, y)| x == y).count() as f64 / NUM_HASHES as f64
}

pub struct LshIndex<K> {
    bands: Vec<HashMap<u64, Vec<K>>>,
    len: usize,
}

impl<K: Copy + Eq + Hash> Default for LshIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash> LshIndex<K> {
    pub fn new() -> Self {
        LshIndex {
            bands: (0..BANDS).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }
    fn band(sig: &Signature, b: usize) -> u64 {
        sig.0[b * ROWS..(b + 1) * ROWS]
            .iter()
            .fold(b as u64, |h, &v| mix(h ^ v as u64))
    }
    pub fn insert(&mut self, key: K, sig: &Signature) {
        for b in 0..BANDS {
            self.bands[b]
                .entry(Self::band(sig, b))
                .or_default()
                .push(key);
        }
        self.len += 1;
    }
    pub fn remove(&mut self, key: K, sig: &Signature) {
        for b in 0..BANDS {
            let h = Self::band(sig, b);
            if let Some(v) = self.bands[b].get_mut(&h) {
                if let Some(i) = v.iter().position(|k| *k == key) {
                    v.swap_remove(i);
                }
                if v.is_empty() {
                    self.bands[b].remove(&h);
                }
            }
        }
        self.len = self.len.saturating_sub(1);
    }
    pub fn candidates(&self, sig: &Signature, out: &mut Vec<K>) {
        for b in 0..BANDS {
            if let Some(v) = self.bands[b].get(&Self::band(sig, b)) {
                for k in v {
                    if !out.contains(k) {
                        out.push(*k);
                    }
                }
            }
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
