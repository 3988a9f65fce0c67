//! The pages' languages: French first, English; every string in a Fluent message file
//! (`web/locales/<lang>.ftl`), none in a template. The language is the one asked by
//! `?lang=` (and then kept in the cookie `conpere_lang`), else the cookie's, else the
//! browser's `Accept-Language`, else French.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::OnceLock;

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// French, the default.
    Fr,
    /// English.
    En,
}

/// The cookie keeping a language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "conpere_lang";

impl Lang {
    /// Its code (`fr`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The other one (for the switch).
    pub fn other(self) -> Lang {
        match self {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        }
    }

    /// A language tag's language, if it is one of ours (`fr-FR` is French).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The preferred of ours in an `Accept-Language` header (by its q values).
    pub fn negotiate(accept: &str) -> Option<Lang> {
        let mut ranked: Vec<(f32, Lang)> = (accept.split(','))
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let q = (parts.find_map(|p| p.trim().strip_prefix("q=")))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map(|(_, lang)| *lang)
    }

    /// The message `id`.
    pub fn t(self, id: &str) -> String {
        self.t_with(id, &[])
    }

    /// Whether the message files have `id` (for codes an institution may add, shown as
    /// they are when no message names them).
    pub fn has(self, id: &str) -> bool {
        bundle(self).has_message(id)
    }

    /// The message `id` with its arguments.
    pub fn t_with(self, id: &str, args: &[(&str, String)]) -> String {
        let bundle = bundle(self);
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_owned(); // a test checks every message is in every file
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, FluentValue::from(value.clone()));
        }
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors)
            .into_owned()
    }
}

/// The message files.
pub const SOURCES: [(Lang, &str); 2] = [
    (Lang::Fr, include_str!("../../locales/fr.ftl")),
    (Lang::En, include_str!("../../locales/en.ftl")),
];

fn bundle(lang: Lang) -> &'static FluentBundle<FluentResource> {
    static FR: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    static EN: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    let cell = match lang {
        Lang::Fr => &FR,
        Lang::En => &EN,
    };
    cell.get_or_init(|| {
        let source = SOURCES.iter().find(|(l, _)| *l == lang).expect("a file").1;
        let resource = FluentResource::try_new(source.to_owned()).expect("the .ftl parses");
        let id = lang.code().parse().expect("a language tag");
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // No Unicode isolation marks: the values are plain text in HTML.
        bundle.set_use_isolating(false);
        bundle.add_resource(resource).expect("no message twice");
        bundle
    })
}

/// The language of a request.
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Self::Rejection> {
        let asked = (parts.uri.query().unwrap_or(""))
            .split('&')
            .find_map(|pair| pair.strip_prefix("lang="))
            .and_then(Lang::from_tag);
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let kept = header("cookie").and_then(|cookies| {
            (cookies.split(';'))
                .find_map(|c| c.trim().strip_prefix(&format!("{LANG_COOKIE}=")))
                .and_then(Lang::from_tag)
        });
        let browser = header("accept-language").and_then(Lang::negotiate);
        Ok(asked.or(kept).or(browser).unwrap_or(Lang::Fr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_in_every_language() {
        let ids = |source: &str| -> Vec<String> {
            let mut ids: Vec<String> = (source.lines())
                .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && l.contains(" = "))
                .map(|l| l.split(" = ").next().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(SOURCES[0].1), ids(SOURCES[1].1));
        for (lang, source) in SOURCES {
            for id in ids(source) {
                assert_ne!(lang.t(&id), id, "{id} in {lang:?}");
            }
        }
    }

    #[test]
    fn the_language_follows_the_browser_by_preference() {
        assert_eq!(Lang::negotiate("en-GB,en;q=0.9,fr;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::negotiate("de-DE,fr;q=0.5,en;q=0.3"), Some(Lang::Fr));
        assert_eq!(Lang::negotiate("de, es"), None);
        assert_eq!(
            Lang::Fr.t_with(
                "contract-title",
                &[("year", "2024".into()), ("next", "2025".into())]
            ),
            "Contrat 2024–2025"
        );
    }
}
