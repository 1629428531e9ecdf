//! Percentage-rollout bucketing: the bit-exact contract every SDK must reproduce.
//!
//! `bucket = murmur3_x86_32(utf8(salt + "/" + value), seed 0) % 100000`, where `value` is the
//! bucket-by attribute written as a string (numbers as ECMAScript's `Number.prototype.toString`
//! writes them). The hot path allocates nothing: the salt prefix is hashed once at compile time
//! ([`PrefixHash`]) and the value is formatted into a stack buffer.
//!
//! Also here: [`rollout_change_fraction`], the share of subjects a weight change moves, computed
//! exactly over the bucket space. Not here: which attribute to bucket by and what to do when it
//! is missing (that is `evaluate`).

use std::fmt::Write as _;

use serde_json::Value;

use crate::model::{Weight, TOTAL_WEIGHT};

/// The number of buckets; equal to the total of a rollout's weights.
pub const BUCKETS: u32 = TOTAL_WEIGHT;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn mix_k1(mut k1: u32) -> u32 {
    k1 = k1.wrapping_mul(C1);
    k1 = k1.rotate_left(15);
    k1.wrapping_mul(C2)
}

#[inline(always)]
fn mix_h1(mut h1: u32, k1: u32) -> u32 {
    h1 ^= mix_k1(k1);
    h1 = h1.rotate_left(13);
    h1.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3 x86_32 of `data` (Austin Appleby's reference `MurmurHash3_x86_32`).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut h = PrefixHash::with_seed(seed);
    h.write(data);
    h.finish()
}

/// Incremental murmur3_x86_32 state, `Copy` so that a prehashed prefix (`salt + "/"`) can be
/// stored in a compiled rollout and continued with each subject's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixHash {
    h1: u32,
    /// Bytes not yet forming a whole 4-byte block; only `tail[..tail_len]` is meaningful.
    tail: [u8; 4],
    tail_len: u8,
    /// Total input length; murmur3 mixes it in modulo 2^32.
    len: u32,
}

impl PrefixHash {
    pub const fn with_seed(seed: u32) -> PrefixHash {
        PrefixHash {
            h1: seed,
            tail: [0; 4],
            tail_len: 0,
            len: 0,
        }
    }

    /// The state after hashing `salt + "/"` with seed 0: the bucketing prefix.
    pub fn for_salt(salt: &str) -> PrefixHash {
        let mut h = PrefixHash::with_seed(0);
        h.write(salt.as_bytes());
        h.write(b"/");
        h
    }

    #[inline]
    pub fn write(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u32);
        if self.tail_len > 0 {
            while self.tail_len < 4 {
                let Some((&b, rest)) = data.split_first() else {
                    return;
                };
                self.tail[self.tail_len as usize] = b;
                self.tail_len += 1;
                data = rest;
            }
            self.h1 = mix_h1(self.h1, u32::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            let k1 = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            self.h1 = mix_h1(self.h1, k1);
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len() as u8;
    }

    #[inline]
    pub fn finish(self) -> u32 {
        let mut h1 = self.h1;
        if self.tail_len > 0 {
            let mut k1 = 0u32;
            for i in (0..self.tail_len as usize).rev() {
                k1 = (k1 << 8) | self.tail[i] as u32;
            }
            h1 ^= mix_k1(k1);
        }
        h1 ^= self.len;
        fmix32(h1)
    }

    /// The bucket of `value` under this prefix: `hash(prefix + value) % 100000`.
    #[inline]
    pub fn bucket(self, value: &[u8]) -> u32 {
        let mut h = self;
        h.write(value);
        h.finish() % BUCKETS
    }
}

/// The bucket (0 ..= 99999) of `value` under `salt`. Convenience for tools and tests; the
/// evaluator uses a prehashed [`PrefixHash`].
pub fn bucket(salt: &str, value: &str) -> u32 {
    PrefixHash::for_salt(salt).bucket(value.as_bytes())
}

/// A fixed-size, stack-allocated string buffer. Big enough for any bucket value the formatter
/// produces (the longest ECMAScript number string is 25 bytes, e.g. `-0.0000012345678901234567`).
pub struct NumberBuf {
    buf: [u8; 40],
    len: usize,
}

impl NumberBuf {
    pub const fn new() -> NumberBuf {
        NumberBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }
}

impl Default for NumberBuf {
    fn default() -> Self {
        NumberBuf::new()
    }
}

impl std::fmt::Write for NumberBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.push_all(s.as_bytes());
        Ok(())
    }
}

/// Writes `x` as ECMAScript's `Number.prototype.toString` (radix 10) does.
pub fn format_number(x: f64, out: &mut NumberBuf) {
    out.len = 0;
    if x.is_nan() {
        out.push_all(b"NaN");
        return;
    }
    if x == 0.0 {
        // Both +0 and -0.
        out.push(b'0');
        return;
    }
    if x.is_infinite() {
        if x < 0.0 {
            out.push(b'-');
        }
        out.push_all(b"Infinity");
        return;
    }
    if x < 0.0 {
        out.push(b'-');
    }
    let x = x.abs();
    // Integers below 2^53 are exact and never reach the exponent form (< 1e21): print them
    // directly, which is also the common case for numeric ids.
    if x < 9_007_199_254_740_992.0 && x.fract() == 0.0 {
        let _ = write!(out, "{}", x as u64);
        return;
    }
    // Rust's `{:e}` without a precision prints the shortest digits that round-trip (closest to
    // the value when there are several), which is exactly ECMAScript's choice of `s`, `k`, `n`.
    let mut sci = NumberBuf::new();
    if write!(sci, "{x:e}").is_err() {
        return;
    }
    let sci = sci.as_bytes();
    let Some(e_pos) = sci.iter().position(|&b| b == b'e') else {
        return;
    };
    let mut digits = [0u8; 20];
    let mut k = 0usize;
    for &b in &sci[..e_pos] {
        if b.is_ascii_digit() && k < digits.len() {
            digits[k] = b;
            k += 1;
        }
    }
    let exp: i32 = std::str::from_utf8(&sci[e_pos + 1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let digits = &digits[..k];
    let k = k as i32;
    // ECMAScript's n: the value is 0.d1d2…dk × 10^n.
    let n = exp + 1;
    if k <= n && n <= 21 {
        out.push_all(digits);
        for _ in 0..(n - k) {
            out.push(b'0');
        }
    } else if 0 < n && n <= 21 {
        out.push_all(&digits[..n as usize]);
        out.push(b'.');
        out.push_all(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_all(b"0.");
        for _ in 0..(-n) {
            out.push(b'0');
        }
        out.push_all(digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.push_all(&digits[1..]);
        }
        out.push(b'e');
        out.push(if n - 1 < 0 { b'-' } else { b'+' });
        let _ = write!(out, "{}", (n - 1).unsigned_abs());
    }
}

/// The bucket of a JSON attribute value, or `None` when the value cannot be bucketed (null,
/// object, array): the caller then serves the rollout's first variant with weight > 0.
#[inline]
pub fn bucket_value(prefix: PrefixHash, value: &Value) -> Option<u32> {
    match value {
        Value::String(s) => Some(prefix.bucket(s.as_bytes())),
        Value::Bool(true) => Some(prefix.bucket(b"true")),
        Value::Bool(false) => Some(prefix.bucket(b"false")),
        Value::Number(n) => {
            let mut buf = NumberBuf::new();
            // The spec reads every number as an IEEE-754 double, so large integers round first.
            let x = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i as f64,
                (None, Some(u)) => u as f64,
                _ => n.as_f64().unwrap_or(f64::NAN),
            };
            format_number(x, &mut buf);
            Some(prefix.bucket(buf.as_bytes()))
        }
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The exact fraction (0.0 ..= 1.0) of the bucket space whose variant differs between two weight
/// lists. Buckets past the end of a list (weights summing to less than 100000) serve no variant;
/// no variant versus a variant counts as a difference. Runs in O(len(old) + len(new)).
pub fn rollout_change_fraction(old: &[Weight], new: &[Weight]) -> f64 {
    // Walk both lists' cumulative boundaries together; between two consecutive boundaries each
    // list serves one variant (or none).
    let mut oi = 0usize;
    let mut ni = 0usize;
    let mut o_end = 0u64;
    let mut n_end = 0u64;
    let mut pos = 0u64;
    let total = BUCKETS as u64;
    let mut differing = 0u64;
    // Advance an index past zero-width entries until its interval covers `pos`.
    fn current<'a>(list: &'a [Weight], i: &mut usize, end: &mut u64, pos: u64) -> Option<&'a str> {
        while *end <= pos {
            let w = list.get(*i)?;
            *end += w.weight as u64;
            *i += 1;
        }
        list.get(*i - 1).map(|w| w.variant.as_str())
    }
    while pos < total {
        let ov = current(old, &mut oi, &mut o_end, pos);
        let nv = current(new, &mut ni, &mut n_end, pos);
        let o_stop = if ov.is_some() { o_end } else { total };
        let n_stop = if nv.is_some() { n_end } else { total };
        let stop = o_stop.min(n_stop).min(total);
        if ov != nv {
            differing += stop - pos;
        }
        pos = stop;
    }
    differing as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VECTORS: [(&str, u32, u32); 6] = [
        ("new-checkout/user-1", 1707527752, 27752),
        ("new-checkout/user-2", 1121911356, 11356),
        ("new-checkout/alice@example.com", 1167430012, 30012),
        ("dark-mode/42", 1823584288, 84288),
        ("shared-cohort/user-1", 2505130030, 30030),
        ("new-checkout/ユーザー", 1280110321, 10321),
    ];

    #[test]
    fn spec_string_vectors() {
        for (input, hash, bucket_) in VECTORS {
            assert_eq!(murmur3_x86_32(input.as_bytes(), 0), hash, "{input}");
            let (salt, value) = input.split_once('/').unwrap();
            assert_eq!(bucket(salt, value), bucket_, "{input}");
        }
    }

    #[test]
    fn spec_value_vectors() {
        let prefix = PrefixHash::for_salt("dark-mode");
        let cases = [
            (json!(42), 84288),
            (json!(2.5), 48969),
            (json!(true), 77532),
            (json!(1e21), 68679),
            (json!(0.00000015), 39037),
        ];
        for (value, expected) in cases {
            assert_eq!(bucket_value(prefix, &value), Some(expected), "{value}");
        }
        assert_eq!(murmur3_x86_32(b"dark-mode/2.5", 0), 3247648969);
        assert_eq!(murmur3_x86_32(b"dark-mode/true", 0), 641777532);
        assert_eq!(murmur3_x86_32(b"dark-mode/1e+21", 0), 355668679);
        assert_eq!(murmur3_x86_32(b"dark-mode/1.5e-7", 0), 2226339037);
        assert_eq!(bucket_value(prefix, &json!(null)), None);
        assert_eq!(bucket_value(prefix, &json!([1])), None);
        assert_eq!(bucket_value(prefix, &json!({})), None);
    }

    #[test]
    fn reference_murmur3_values() {
        // Published values of the reference implementation.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514E_28B7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff), 0x81F1_6F39);
        assert_eq!(murmur3_x86_32(b"\0\0\0\0", 0), 0x2362_F9DE);
        assert_eq!(murmur3_x86_32(b"aaaa", 0x9747_b28c), 0x5A97_808A);
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xB3DD_93FA);
        assert_eq!(murmur3_x86_32(b"Hello, world!", 0x9747_b28c), 0x2488_4CBA);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data = b"the quick brown fox jumps over the lazy dog";
        for split in 0..data.len() {
            for split2 in split..data.len() {
                let mut h = PrefixHash::with_seed(7);
                h.write(&data[..split]);
                h.write(&data[split..split2]);
                h.write(&data[split2..]);
                assert_eq!(h.finish(), murmur3_x86_32(data, 7));
            }
        }
    }

    fn fmt(x: f64) -> String {
        let mut b = NumberBuf::new();
        format_number(x, &mut b);
        b.as_str().to_string()
    }

    #[test]
    fn ecmascript_number_to_string() {
        let cases: [(f64, &str); 24] = [
            (0.0, "0"),
            (-0.0, "0"),
            (5.0, "5"),
            (-5.0, "-5"),
            (0.1, "0.1"),
            (2.5, "2.5"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (1.2345e-6, "0.0000012345"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (9007199254740993.0, "9007199254740992"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100"),
            (-1e-7, "-1e-7"),
            (-1.2345678901234567e-6, "-0.0000012345678901234567"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt(x), want, "{x:?}");
        }
    }

    fn w(list: &[(&str, u32)]) -> Vec<Weight> {
        list.iter()
            .map(|(v, w)| Weight {
                variant: v.to_string(),
                weight: *w,
            })
            .collect()
    }

    #[test]
    fn change_fraction_examples() {
        let a = w(&[("on", 10_000), ("off", 90_000)]);
        let b = w(&[("on", 25_000), ("off", 75_000)]);
        assert_eq!(rollout_change_fraction(&a, &a), 0.0);
        assert_eq!(rollout_change_fraction(&a, &b), 0.15);
        assert_eq!(rollout_change_fraction(&b, &a), 0.15);
        let c = w(&[("off", 90_000), ("on", 10_000)]);
        assert_eq!(rollout_change_fraction(&a, &c), 0.2);
        let d = w(&[("x", 0), ("on", 10_000), ("y", 0), ("off", 90_000)]);
        assert_eq!(rollout_change_fraction(&a, &d), 0.0);
        assert_eq!(rollout_change_fraction(&a, &[]), 1.0);
        assert_eq!(rollout_change_fraction(&[], &[]), 0.0);
    }
}
