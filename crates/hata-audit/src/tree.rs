//! A line parsed for hashing: a JSON tree that borrows its strings from the line where it can
//! and holds object members in a `Vec`, already sorted as RFC 8785 writes them.
//!
//! Why not `serde_json::Value`: with the workspace's `preserve_order`, every object is an
//! `IndexMap` with a SipHash per member and every string an allocation, which made up most of
//! the time to verify a chain (14 s for a million entries against a goal of 10 s). This tree
//! is what the verifier reads; `jcs::write_value` on a `Value` is the same canonical form,
//! and tests/jcs.rs holds the two to that.
//!
//! It refuses an object with two members of the same name: JSON leaves their meaning open
//! (serde_json and Python keep the last, other readers the first), and hata never writes one.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::jcs;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Sorted by name as UTF-16 code units, names unique.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses one line.
    pub fn parse(line: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// The member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Json<'a>> {
        let Json::Object(members) = self else {
            return None;
        };
        let at = members
            .binary_search_by(|(n, _)| jcs::utf16_order(n, name))
            .ok()?;
        Some(&members[at].1)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::U64(u) => Some(*u),
            _ => None,
        }
    }

    pub fn is_str(&self) -> bool {
        matches!(self, Json::Str(_))
    }

    /// Appends the canonical form, leaving out the top-level member named `skip`.
    pub fn write_canonical(&self, skip: Option<&str>, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::U64(u) => jcs::write_u64(*u, out),
            Json::I64(i) => jcs::write_i64(*i, out),
            Json::F64(f) => jcs::write_f64(*f, out),
            Json::Str(s) => jcs::write_string(s, out),
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_canonical(None, out);
                }
                out.push(b']');
            }
            Json::Object(members) => {
                out.push(b'{');
                let mut first = true;
                for (name, value) in members {
                    if Some(name.as_ref()) == skip {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    jcs::write_string(name, out);
                    out.push(b':');
                    value.write_canonical(None, out);
                }
                out.push(b'}');
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(Json::U64(u))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(Json::I64(i))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Json::F64(f))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        while let Some(Name(name)) = map.next_key()? {
            members.push((name, map.next_value()?));
        }
        members.sort_unstable_by(|(a, _), (b, _)| jcs::utf16_order(a, b));
        if let Some(pair) = members.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(de::Error::custom(format!(
                "duplicate member `{}`",
                pair[0].0
            )));
        }
        Ok(Json::Object(members))
    }
}

/// A member name, borrowed from the line unless it had escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        let tree = Json::parse(text.as_bytes()).expect("JSON");
        let mut out = Vec::new();
        tree.write_canonical(None, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn same_canonical_form_as_jcs_on_values() {
        for text in [
            r#"{"b":[1,-1,1.5,-0.0,1e21,18446744073709551615,-9223372036854775808],"a":null}"#,
            r#"{"\ud83d\ude00":1,"\ufb33":2,"é":"\u0000\n\"\\","":{"y":true,"x":false}}"#,
            r#"[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(text).expect("JSON");
            assert_eq!(canon(text), jcs::to_string(&value), "{text}");
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let tree = Json::parse(br#"{"plain":"text","esc\u0041ped":"a\nb"}"#).expect("JSON");
        let Json::Object(members) = tree else {
            panic!("an object")
        };
        assert!(matches!(members[0].0, Cow::Owned(_)), "{members:?}");
        assert!(matches!(&members[0].1, Json::Str(Cow::Owned(s)) if s == "a\nb"));
        assert!(matches!(members[1].0, Cow::Borrowed("plain")));
        assert!(matches!(members[1].1, Json::Str(Cow::Borrowed("text"))));
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert!(Json::parse(br#"{"a":1,"b":2,"a":1}"#).is_err());
        // Equal once unescaped.
        assert!(Json::parse(br#"{"a":1,"\u0061":1}"#).is_err());
        assert!(Json::parse(br#"{"a":{"a":1},"b":{"a":1}}"#).is_ok());
    }

    #[test]
    fn skip_leaves_out_a_top_level_member_only() {
        let tree = Json::parse(br#"{"hash":"h","x":{"hash":"kept"}}"#).expect("JSON");
        let mut out = Vec::new();
        tree.write_canonical(Some("hash"), &mut out);
        assert_eq!(out, br#"{"x":{"hash":"kept"}}"#);
    }
}
