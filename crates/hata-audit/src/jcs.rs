//! The canonical form of JSON that entry hashes and checkpoint signatures are computed over:
//! RFC 8785, the JSON Canonicalization Scheme (JCS).
//!
//! - objects: members sorted by their names as UTF-16 code units, no whitespace;
//! - strings: UTF-8, escaping only `"`, `\` and U+0000..U+001F (`\b \t \n \f \r` by name,
//!   the others as `\u00xx`, lower-case hex);
//! - numbers: IEEE 754 doubles written as ECMAScript's `Number.prototype.toString` does
//!   (`1e+21`, `1e-7`, `0.1`, `-0` as `0`); integers beyond 2^53 are rounded to the nearest
//!   double first, as every JCS implementation reads them.
//!
//! Why a module of our own and not `serde_json_canonicalizer` or `serde_jcs`: both canonicalise
//! through serde's `Serializer`, buffering every member into its own `Vec` and re-parsing each
//! member name as JSON to sort it, which would be most of the cost of verifying a chain; the
//! verifier wants canonical bytes for SHA-256 straight from the line it read (`from_text`,
//! through the private `tree`), into one reused buffer. The hard part, ECMAScript number
//! formatting, is `ryu-js` (maintained by the Boa JavaScript engine); what is left here is
//! sorting and escaping, tested against the RFC's examples and, property-wise, against
//! `serde_json_canonicalizer` (tests/jcs.rs). Both also need serde_json's `float_roundtrip`,
//! which this crate turns on anyway (see Cargo.toml).
//!
//! `to_string` / `write_value` take a `serde_json::Value`, which cannot hold NaN or infinities,
//! so they cannot fail; `from_text` refuses what `serde_json` refuses, and repeated member
//! names.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// The canonical form of `value` as a string.
pub fn to_string(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    // Only valid UTF-8 is written: the input strings' bytes and ASCII.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The canonical form of JSON text (refusing an object with a repeated member name, whose
/// meaning JSON leaves open). This is the path the verifier takes.
pub fn from_text(text: &[u8]) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(text.len());
    crate::tree::Json::parse(text)?.write_canonical(None, &mut out);
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Appends the canonical form of `value` to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object_without(map, None, out),
    }
}

/// Appends the canonical form of the object `map`, leaving out the member named `skip` (the
/// entry's own `hash`, which its hash cannot cover), without copying the map.
pub fn write_object_without(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut members: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != skip)
        .collect();
    // RFC 8785 §3.2.3: by UTF-16 code units, which differs from UTF-8 byte order for
    // characters above U+FFFF against U+E000..U+FFFF.
    members.sort_unstable_by(|(a, _), (b, _)| utf16_order(a, b));
    out.push(b'{');
    for (i, (name, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

pub(crate) fn utf16_order(a: &str, b: &str) -> Ordering {
    // UTF-8 bytes sort as code points, and code points as UTF-16 code units except for one
    // pair of ranges: U+E000..U+FFFF (lead bytes EE, EF) sort before U+10000.. (F0..F4) as
    // code points but after them as UTF-16 (whose surrogates are D800..DFFF). So compare bytes
    // and swap that one case. Where the first difference is a continuation byte the two
    // characters share a lead byte, hence a range, and bytes decide.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return a.len().cmp(&b.len());
    };
    match (a[i], b[i]) {
        (0xee..=0xef, 0xf0..) => Ordering::Greater,
        (0xf0.., 0xee..=0xef) => Ordering::Less,
        (x, y) => x.cmp(&y),
    }
}

/// 2^53: below it every integer is a double exactly, and ECMAScript prints it as its digits.
const EXACT_INT: u64 = 1 << 53;

fn write_number(n: &Number, out: &mut Vec<u8>) {
    if let Some(u) = n.as_u64() {
        write_u64(u, out);
    } else if let Some(i) = n.as_i64() {
        write_i64(i, out);
    } else {
        // Without serde_json's `arbitrary_precision` every number has an f64 view.
        write_f64(n.as_f64().unwrap_or(0.0), out);
    }
}

pub(crate) fn write_u64(u: u64, out: &mut Vec<u8>) {
    if u < EXACT_INT {
        out.extend_from_slice(itoa(u, &mut [0; 20]));
    } else {
        // The nearest double (round half to even, as JCS readers convert).
        write_f64(u as f64, out);
    }
}

pub(crate) fn write_i64(i: i64, out: &mut Vec<u8>) {
    if i < 0 && i.unsigned_abs() < EXACT_INT {
        out.push(b'-');
        out.extend_from_slice(itoa(i.unsigned_abs(), &mut [0; 20]));
    } else if i >= 0 {
        write_u64(i.unsigned_abs(), out);
    } else {
        write_f64(i as f64, out);
    }
}

/// `n`'s decimal digits, written into the end of `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// A finite double as ECMAScript writes it (a `Value` or a parsed line holds no other).
pub(crate) fn write_f64(f: f64, out: &mut Vec<u8>) {
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(f).as_bytes());
}

pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test input is JSON");
        to_string(&value)
    }

    #[test]
    fn rfc8785_section_3_2_2_example() {
        // RFC 8785 §3.2.2, the "sample input" and its canonical form.
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_section_3_2_3_sorting_by_utf16() {
        // RFC 8785 §3.2.3: U+1F600 (a surrogate pair, D83D DE00) sorts before U+FB33 in
        // UTF-16 although it is after it in UTF-8 and in code points.
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let sorted_values = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ];
        let out = canon(input);
        let mut last = 0;
        for v in sorted_values {
            let at = out.find(v).expect("every value is written");
            assert!(at > last, "{v} out of order in {out}");
            last = at;
        }
    }

    #[test]
    fn rfc8785_appendix_b_numbers() {
        // RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript strings.
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in cases {
            let f = f64::from_bits(bits);
            let value = Value::Number(Number::from_f64(f).expect("finite"));
            assert_eq!(to_string(&value), expected, "bits {bits:#018x}");
            // The same number read back from its JSON text (the verifier's path).
            let text = serde_json::to_string(&value).expect("serialisable");
            assert_eq!(canon(&text), expected, "{text}");
        }
    }

    #[test]
    fn integers_are_doubles() {
        assert_eq!(
            canon("[0, -0, 1, -1, 9007199254740991, -9007199254740991]"),
            "[0,0,1,-1,9007199254740991,-9007199254740991]"
        );
        // 2^53 + 1 is no double: it rounds to 2^53 (ties to even).
        assert_eq!(canon("9007199254740993"), "9007199254740992");
        assert_eq!(canon("18446744073709551615"), "18446744073709552000");
        assert_eq!(canon("-9223372036854775808"), "-9223372036854776000");
        // Past u64: serde_json reads it as a double.
        assert_eq!(
            canon("123456789012345678901234567890"),
            "1.2345678901234568e+29"
        );
        assert_eq!(canon("1e21"), "1e+21");
        // Out of double range: serde_json refuses it, so it never reaches canonicalisation.
        assert!(serde_json::from_str::<Value>("1E400").is_err());
    }

    #[test]
    fn floats_as_ecmascript_writes_them() {
        for (input, expected) in [
            ("0.1", "0.1"),
            ("-0.0", "0"),
            ("1.0", "1"),
            ("100", "100"),
            ("1e20", "100000000000000000000"),
            ("1e-6", "0.000001"),
            ("1e-7", "1e-7"),
            ("123456789e-15", "1.23456789e-7"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("5e-324", "5e-324"),
            ("2.5e+25", "2.5e+25"),
        ] {
            assert_eq!(canon(input), expected, "{input}");
        }
    }

    #[test]
    fn utf16_order_is_the_order_of_code_units() {
        let names = [
            "",
            "a",
            "ab",
            "b",
            "\u{7f}",
            "\u{80}",
            "é",
            "\u{7ff}",
            "\u{800}",
            "\u{d7ff}",
            "\u{e000}",
            "\u{fb33}",
            "\u{ffff}",
            "\u{10000}",
            "\u{1f600}",
            "\u{10ffff}",
            "a\u{e000}",
            "a\u{1f600}",
            "\u{1f600}a",
            "\u{e000}a",
        ];
        for a in names {
            for b in names {
                assert_eq!(
                    utf16_order(a, b),
                    a.encode_utf16().cmp(b.encode_utf16()),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn escapes() {
        let s = "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \"\\/\u{7f}\u{2028}é😀";
        assert_eq!(
            to_string(&json!(s)),
            "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\\"\\\\/\u{7f}\u{2028}é😀\""
        );
    }

    #[test]
    fn nested_objects_are_sorted_and_hash_is_skippable() {
        let value = json!({"b": {"z": 1, "a": [{"y": 2, "x": 1}]}, "a": null, "hash": "h"});
        assert_eq!(
            to_string(&value),
            r#"{"a":null,"b":{"a":[{"x":1,"y":2}],"z":1},"hash":"h"}"#
        );
        let mut out = Vec::new();
        write_object_without(value.as_object().expect("object"), Some("hash"), &mut out);
        assert_eq!(out, br#"{"a":null,"b":{"a":[{"x":1,"y":2}],"z":1}}"#);
    }
}
