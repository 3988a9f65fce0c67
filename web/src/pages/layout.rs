//! The frame of every page: the document language, landmarks (banner, navigation, main,
//! content info), a link to skip to the content, headings in order (the page's `h1`, its
//! sections' `h2`), the language switch, the style sheet conpere serves itself.

use super::i18n::Lang;
use maud::{html, Markup, DOCTYPE};

/// A whole page: `title` as its `h1`, `body` in its main landmark.
pub fn page(lang: Lang, title: &str, body: Markup) -> Markup {
    let other = lang.other();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (lang.t("app-name")) }
                link rel="stylesheet" href="/assets/conpere.css";
            }
            body {
                a.skip href="#main" { (lang.t("skip-to-content")) }
                header {
                    p.app { (lang.t("app-name")) }
                    nav aria-label=(lang.t("app-name")) {
                        ul {
                            li { a href="/" { (lang.t("nav-home")) } }
                            li { a href={ "?lang=" (other.code()) } lang=(other.code()) hreflang=(other.code()) { (lang.t("lang-switch")) } }
                            li { a href="/auth/logout" { (lang.t("nav-logout")) } }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer { p { (lang.t("footer-text")) } }
            }
        }
    }
}
