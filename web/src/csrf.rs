//! Cross-site request forgery: a browser sends its session cookie with any request, even
//! one a foreign page makes it send. So a request that changes something (any method but
//! GET, HEAD, OPTIONS) on a browser session must come from conpere's own pages: its
//! `Origin` (or, without one, its `Referer`) must be conpere's public origin — a strict
//! origin check. Requests authenticated otherwise (the proxy's header, a bearer token)
//! carry no ambient credential and are not concerned.

use crate::error::ApiError;
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

/// Refuses (403 `csrf`) a state-changing request that does not come from `origin`.
pub fn check(method: &Method, headers: &HeaderMap, origin: &str) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let from = match (header("origin"), header("referer")) {
        (Some(origin), _) if origin != "null" => Some(origin_of(origin)),
        (_, Some(referer)) => Some(origin_of(referer)),
        _ => None,
    };
    match from {
        Some(from) if from == origin => Ok(()),
        _ => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "csrf",
            "this request does not come from conpere's pages (Origin): refused",
        )),
    }
}

/// A page's form: it must come from conpere's own pages — `origin` when the public URL
/// is known, else the host the request was sent to (behind a proxy that keeps `Host`).
/// A proxy's credentials are ambient too (its own session cookie), so this holds in every
/// mode.
pub fn check_form(headers: &HeaderMap, origin: Option<&str>) -> Result<(), ApiError> {
    let host = |h: &str| {
        h.split_once("://")
            .map_or(h, |(_, rest)| rest)
            .to_ascii_lowercase()
    };
    let expected = match origin {
        Some(origin) => host(origin),
        None => headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default(),
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let from = match (header("origin"), header("referer")) {
        (Some(origin), _) if origin != "null" => Some(host(&origin_of(origin))),
        (_, Some(referer)) => Some(host(&origin_of(referer))),
        _ => None,
    };
    match from {
        Some(from) if !expected.is_empty() && from == expected => Ok(()),
        _ => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "csrf",
            "this form does not come from conpere's pages (Origin): refused",
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
        assert!(check(&Method::GET, &headers(&[]), ours).is_ok());
        assert!(check(
            post,
            &headers(&[("origin", "https://conpere.univ.fr")]),
            ours
        )
        .is_ok());
        let referer = [("referer", "https://conpere.univ.fr/contrats/1")];
        assert!(check(post, &headers(&referer), ours).is_ok());
        for refused in [
            &[("origin", "https://evil.example")][..],
            &[("origin", "https://conpere.univ.fr.evil.example")],
            &[("origin", "null")],
            &[],
            &[("referer", "https://evil.example/conpere.univ.fr")],
        ] {
            assert_eq!(
                check(post, &headers(refused), ours).unwrap_err().status,
                403
            );
        }
    }
}
