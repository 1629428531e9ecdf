//! The UI's words, in English and Japanese: one catalogue per language
//! (`i18n/{en,ja}.toml`, embedded), the language of a request (`?lang=`, then the `hata_lang`
//! cookie, then `Accept-Language`), and the lookups templates call (`L::t`, `L::f`).
//!
//! Every string a page shows comes from a catalogue; the tests check that both catalogues
//! hold the same keys and that every key the templates name exists.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// The cookie that keeps a language chosen with `?lang=`.
pub const COOKIE: &str = "hata_lang";

/// A language the UI speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ja];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../i18n/en.toml"),
            Lang::Ja => include_str!("../i18n/ja.toml"),
        }
    }

    /// The language `Accept-Language` prefers among ours (by `q`, then order); `None` when it
    /// names none of them.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in value.split(',') {
            let mut parts = item.trim().split(';');
            let Some(lang) = parts.next().and_then(|tag| Lang::parse(tag.trim())) else {
                continue;
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The request's language, and whether it was chosen by `?lang=` just now (the answer
    /// then sets the cookie).
    pub fn of_request(parts: &Parts) -> (Lang, bool) {
        let asked = parts.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .and_then(|(_, v)| Lang::parse(&v))
        });
        if let Some(lang) = asked {
            return (lang, true);
        }
        (Lang::of_headers(&parts.headers), false)
    }

    /// The cookie's language, else `Accept-Language`'s, else English.
    pub fn of_headers(headers: &HeaderMap) -> Lang {
        hata_server::auth::session::cookie(headers, COOKIE)
            .and_then(Lang::parse)
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::En)
    }
}

type Catalogue = HashMap<String, String>;

fn parse(lang: Lang) -> Catalogue {
    toml::from_str(lang.source()).unwrap_or_else(|e| {
        // The catalogues are embedded and checked by the tests: this is a build that skipped them.
        tracing::error!(lang = lang.code(), error = %e, "the UI catalogue does not parse");
        Catalogue::new()
    })
}

static CATALOGUES: LazyLock<[Catalogue; 2]> = LazyLock::new(|| [parse(Lang::En), parse(Lang::Ja)]);

/// The lookups of one language.
#[derive(Debug, Clone, Copy)]
pub struct L {
    pub lang: Lang,
}

impl L {
    pub fn new(lang: Lang) -> L {
        L { lang }
    }

    fn catalogue(self) -> &'static Catalogue {
        &CATALOGUES[self.lang as usize]
    }

    /// The text of `key` (the key itself if missing, which the tests keep from happening).
    pub fn t(self, key: &'static str) -> &'static str {
        self.catalogue().get(key).map(String::as_str).unwrap_or(key)
    }

    /// The text of `key` with each `{name}` replaced by its value.
    pub fn f(self, key: &'static str, args: &[(&str, &str)]) -> String {
        let mut out = self.t(key).to_string();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(lang: Lang) -> BTreeSet<String> {
        let parsed: Catalogue = toml::from_str(lang.source())
            .unwrap_or_else(|e| panic!("{}.toml does not parse: {e}", lang.code()));
        parsed.into_keys().collect()
    }

    #[test]
    fn both_catalogues_hold_the_same_keys() {
        let en = keys(Lang::En);
        let ja = keys(Lang::Ja);
        let only_en: Vec<_> = en.difference(&ja).collect();
        let only_ja: Vec<_> = ja.difference(&en).collect();
        assert!(
            only_en.is_empty() && only_ja.is_empty(),
            "only in en.toml: {only_en:?}; only in ja.toml: {only_ja:?}"
        );
        assert!(en.len() > 20, "the catalogues hold the UI's words");
    }

    /// Every `.t("…")` / `.f("…", …)` in the crate's sources names a key of the catalogues, and
    /// every key is used somewhere (no dead words to translate).
    #[test]
    fn every_key_used_exists_and_every_key_is_used() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut used = BTreeSet::new();
        // The sources, folders (`edit/`) included.
        let mut files = Vec::new();
        let mut dirs = vec![dir];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for path in files {
            let text = std::fs::read_to_string(&path).expect("source");
            // `.t(` or `.f(`, then (past any line break rustfmt put there) a string literal.
            for call in [".t(", ".f("] {
                for (i, _) in text.match_indices(call) {
                    let Some(rest) = text[i + call.len()..].trim_start().strip_prefix('"') else {
                        continue;
                    };
                    let key = &rest[..rest.find('"').expect("closing quote")];
                    // Catalogue keys are `area.name`; anything else is not a lookup (this
                    // test's own patterns, say).
                    let is_key = key.contains('.')
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
                    if is_key {
                        used.insert(key.to_string());
                    }
                }
            }
        }
        let en = keys(Lang::En);
        let missing: Vec<_> = used.difference(&en).collect();
        assert!(
            missing.is_empty(),
            "keys used but not in the catalogues: {missing:?}"
        );
        let unused: Vec<_> = en.difference(&used).collect();
        assert!(
            unused.is_empty(),
            "keys in the catalogues never used: {unused:?}"
        );
    }

    #[test]
    fn placeholders_match_between_languages() {
        let placeholders = |text: &str| -> BTreeSet<String> {
            text.split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string()))
                .collect()
        };
        let en: Catalogue = toml::from_str(Lang::En.source()).unwrap();
        let ja: Catalogue = toml::from_str(Lang::Ja.source()).unwrap();
        for (key, text) in &en {
            assert_eq!(
                placeholders(text),
                placeholders(&ja[key]),
                "{key}: the same placeholders in both languages"
            );
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_language_we_speak() {
        assert_eq!(Lang::from_accept_language("ja,en;q=0.8"), Some(Lang::Ja));
        assert_eq!(
            Lang::from_accept_language("fr, ja-JP;q=0.5, en;q=0.9"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(
            Lang::from_accept_language("ja;q=0, en;q=0.1"),
            Some(Lang::En)
        );
        assert_eq!(
            L::new(Lang::Ja).f("flags.page_of", &[("page", "2"), ("pages", "3")]),
            "2 / 3 ページ"
        );
    }
}
