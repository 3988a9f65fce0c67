//! GET-only access to Pégase's data APIs with the bearer token: the one way the adapter
//! reads (INS, ODF, CHC). Read-only by construction: [`PegaseApi`] can only send GET
//! requests; the token POST is [`BearerProvider`]'s, the one non-GET request of the
//! adapter.

use conpere_connectors::bearer::BearerProvider;
use conpere_connectors::http::{Outcome, RequestSpec, Response, Url};
use conpere_connectors::ConnectorError;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::Value;

/// The authenticated, GET-only client of every data call.
#[derive(Debug, Clone)]
pub struct PegaseApi {
    tokens: BearerProvider,
}

impl PegaseApi {
    /// Data calls through the client of `tokens` (one client for the token and the data
    /// calls), authenticated by them.
    pub fn new(tokens: BearerProvider) -> PegaseApi {
        PegaseApi { tokens }
    }

    /// The token provider (`check` asks it for a token first).
    pub fn tokens(&self) -> &BearerProvider {
        &self.tokens
    }

    /// GETs `url` and decodes its JSON body as `T`. `operation` names the call in errors
    /// and logs (never with a student number in clear); `what` says what the body should
    /// have been, for the error when it is not.
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        operation: String,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let request = RequestSpec::get(url, operation.clone());
        let response = self.tokens.send(request, classify).await?;
        serde_json::from_slice(&response.body).map_err(|e| {
            ConnectorError::failed(
                operation,
                format!("the answer is not {what} ({e}); check base_url / modules"),
            )
        })
    }
}

/// A walk through the pages of a Pégase listing (INS's feed, ODF's listings): `page`
/// from 0 and `taille` added to the URL, until the last page the answers announce, or an
/// empty one. Items stay JSON values, parsed one by one by the caller, so that a bad one
/// is rejected alone.
pub struct PageWalk<'a> {
    api: &'a PegaseApi,
    url: Url,
    size: usize,
    operation: String,
    what: &'static str,
    page: usize,
    done: bool,
}

/// One page of a listing as Pégase sends it: its items (`items` in ODF, `resultats` in
/// INS) and how many pages there are.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default, alias = "resultats")]
    items: Vec<Value>,
    #[serde(default)]
    total_pages: usize,
}

impl<'a> PageWalk<'a> {
    /// The pages of the listing at `url`, `size` items a page; `operation` names the
    /// calls (with `, page N`), `what` says what a page should have been.
    pub fn new(
        api: &'a PegaseApi,
        url: Url,
        size: usize,
        operation: impl Into<String>,
        what: &'static str,
    ) -> PageWalk<'a> {
        PageWalk {
            api,
            url,
            size,
            operation: operation.into(),
            what,
            page: 0,
            done: false,
        }
    }

    /// The next page's items, or `None` past the last page.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("page", &self.page.to_string())
            .append_pair("taille", &self.size.to_string());
        let operation = format!("{}, page {}", self.operation, self.page);
        let page: Page = self.api.get(url, operation, self.what).await?;
        self.page += 1;
        self.done = page.items.is_empty() || self.page >= page.total_pages;
        Ok(Some(page.items))
    }
}

/// `base` (a module's URL) with `path` appended, then each of `segments` as one
/// percent-encoded path segment (object codes such as `VET:L2INF/120` hold slashes).
pub fn module_url(base: &Url, path: &str, segments: &[&str]) -> Result<Url, ConnectorError> {
    let root = base.as_str().trim_end_matches('/');
    let mut url = Url::parse(&format!("{root}{path}")).map_err(|e| {
        ConnectorError::failed("building a Pégase URL", format!("{root}{path}: {e}"))
    })?;
    if !segments.is_empty() {
        let mut parts = url.path_segments_mut().map_err(|()| {
            ConnectorError::failed("building a Pégase URL", format!("{root} cannot be a base"))
        })?;
        parts.pop_if_empty().extend(segments);
    }
    Ok(url)
}

/// Status rules, with what the server said: Pégase error bodies are JSON
/// (`{code, message}`), older modules answer plain text; either way the `correlationId`
/// header is what PC-Scol's support asks for. A success whose body is not complete JSON
/// was cut on the way (a proxy, a reset connection): it is retried like a 503.
fn classify(response: &Response) -> Outcome {
    let said = || describe_error(response);
    match Outcome::by_status(response) {
        Outcome::Done => match serde_json::from_slice::<IgnoredAny>(&response.body) {
            Ok(_) => Outcome::Done,
            Err(e) if e.is_eof() || e.is_syntax() => Outcome::Retry(format!(
                "the answer is not complete JSON ({e}, {} bytes): cut on the way?",
                response.body.len()
            )),
            Err(_) => Outcome::Done,
        },
        Outcome::Retry(reason) => Outcome::Retry(format!("{reason}; {}", said())),
        Outcome::Fail(reason) => Outcome::Fail(format!("{reason}; {}", said())),
    }
}

/// The error body's message (JSON) or its nature (non-JSON), and the correlation id.
fn describe_error(response: &Response) -> String {
    let body = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .map(|m| format!("server message: {m}"))
        .unwrap_or_else(|| format!("non-JSON body of {} bytes", response.body.len()));
    let correlation = response
        .headers
        .get("correlationId")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    format!("{body}, correlationId {correlation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_with_slashes_stay_one_segment() {
        let base = Url::parse("https://chc.u.fr/").unwrap();
        let url = module_url(
            &base,
            "/api/ext/chc/v1/objet-formation",
            &["ETAB00", "VET:L2/1"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://chc.u.fr/api/ext/chc/v1/objet-formation/ETAB00/VET:L2%2F1"
        );
    }
}
