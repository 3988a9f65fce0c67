//! Cross-site request forgery: a browser sends its ambient credentials — conpere's
//! session cookie, or the authenticating proxy's own — with any request, even one a
//! foreign page makes it send. So a request that changes something (any method but GET,
//! HEAD, OPTIONS) must come from conpere's own pages — its `Origin` (or, without one, its
//! `Referer`) must be conpere's — when it carries such a credential: every request of a
//! browser session, and, behind a proxy, every request a foreign page can make a browser
//! send without asking first (a form or plain text; a JSON call from elsewhere needs a
//! CORS preflight, which conpere never grants). Bearer tokens are not ambient: not
//! concerned. [`crate::roles`] applies it as it authenticates, for the API and the pages
//! alike.

use crate::error::ApiError;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method};

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

/// Whether a foreign page can make a browser send this request without a CORS
/// preflight: a form, or plain text (or no body type at all).
pub fn sendable_cross_site(headers: &HeaderMap) -> bool {
    let kind = (headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    matches!(
        kind.as_deref(),
        None | Some("application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
    )
}

/// Refuses (403 `csrf`) a state-changing request that does not come from conpere's own
/// pages: `origin` when the public URL is known, else the host the request was sent to
/// (a proxy keeping `Host`), compared without the scheme the proxy may have changed.
pub fn check(method: &Method, headers: &HeaderMap, origin: Option<&str>) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let from = match (header("origin"), header("referer")) {
        (Some(origin), _) if origin != "null" => Some(origin_of(origin)),
        (_, Some(referer)) => Some(origin_of(referer)),
        _ => None,
    };
    let host = |o: &str| o.split_once("://").map_or(o, |(_, host)| host).to_owned();
    let ours = match (origin, from.as_deref()) {
        (Some(origin), Some(from)) => from == origin,
        (None, Some(from)) => header("host").is_some_and(|h| h.to_ascii_lowercase() == host(from)),
        (_, None) => false,
    };
    match ours {
        true => Ok(()),
        false => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "csrf",
            "this request does not come from conpere's pages (Origin): refused",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_conpere_s_own_pages_change_things() {
        let ours = "https://conpere.univ.fr";
        let post = &Method::POST;
        assert!(check(&Method::GET, &headers(&[]), Some(ours)).is_ok());
        assert!(check(
            post,
            &headers(&[("origin", "https://conpere.univ.fr")]),
            Some(ours)
        )
        .is_ok());
        let referer = [("referer", "https://conpere.univ.fr/contrats/1")];
        assert!(check(post, &headers(&referer), Some(ours)).is_ok());
        for refused in [
            &[("origin", "https://evil.example")][..],
            &[("origin", "https://conpere.univ.fr.evil.example")],
            &[("origin", "null")],
            &[],
            &[("referer", "https://evil.example/conpere.univ.fr")],
        ] {
            assert_eq!(
                check(post, &headers(refused), Some(ours))
                    .unwrap_err()
                    .status,
                403
            );
        }
    }

    #[test]
    fn behind_a_proxy_the_host_is_conpere_s_and_json_calls_need_no_origin() {
        let post = &Method::POST;
        let from =
            |origin: &'static str| headers(&[("host", "conpere.univ.fr"), ("origin", origin)]);
        assert!(check(post, &from("https://conpere.univ.fr"), None).is_ok());
        assert!(check(post, &from("https://evil.example"), None).is_err());
        assert!(sendable_cross_site(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(sendable_cross_site(&headers(&[(
            "content-type",
            "text/plain;charset=utf-8"
        )])));
        assert!(sendable_cross_site(&headers(&[])));
        assert!(!sendable_cross_site(&headers(&[(
            "content-type",
            "application/json"
        )])));
    }
}
