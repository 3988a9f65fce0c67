//! The HTTP side: routes, Basic authentication, SOAP dispatch, and the injected faults
//! applied to what goes on the wire.

use super::data::Dataset;
use super::faults::{self, Failure, FaultControl, Plan};
use super::operations;
use super::params::Params;
use super::wsdl::{self, Document};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use conpere_connectors::simulation::RequestCounters;
use conpere_connectors::soap;
use std::path::PathBuf;
use std::sync::Arc;

/// `Content-Type` of an ISO-8859-1 response.
const LATIN1_CONTENT_TYPE: &str = "text/xml; charset=ISO-8859-1";

/// The XML declaration of an ISO-8859-1 response.
const LATIN1_DECLARATION: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#;

/// The operation under which requests whose operation could not be read are counted.
const UNREADABLE: &str = "(unreadable)";

/// Everything the handlers share.
pub(crate) struct AppState {
    pub data: Dataset,
    pub username: String,
    pub password: String,
    pub specs_dir: Option<PathBuf>,
    /// `http://127.0.0.1:PORT/services`.
    pub base_url: String,
    pub faults: FaultControl,
    pub counters: RequestCounters,
}

/// The routes: `POST {base}/{Service}` for SOAP, `GET {base}/{Service}?wsdl`, and the
/// files the WSDL imports (`{base}/abstract/…`, `{base}/schemas/…`; `/schemas/…` too).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/services/{service}", post(soap_call).get(service_page))
        .route("/services/abstract/{file}", get(abstract_file))
        .route("/services/schemas/{*path}", get(schema_file))
        .route("/schemas/{*path}", get(schema_file))
        .with_state(state)
}

/// A SOAP answer before encoding: HTTP status and envelope.
struct Answer {
    status: StatusCode,
    xml: String,
}

impl Answer {
    /// A fault: HTTP 500, as SOAP 1.1 over HTTP wants for every fault (Apogée's "no
    /// data" included).
    fn fault(service: &str, faultstring: &str, message: &str) -> Answer {
        let namespace = operations::namespace(service);
        Answer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            xml: soap::fault_envelope(&namespace, faultstring, message),
        }
    }
}

async fn soap_call(
    State(state): State<Arc<AppState>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = state.counters.start();
    if !authorized(&state, &headers) {
        state.counters.unauthorized();
        return unauthorized();
    }
    if !wsdl::is_simple_name(&service) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let (operation, wrapper) = match soap::parse_request(&body, content_type) {
        Ok(request) => request,
        Err(error) => {
            state.counters.operation(UNREADABLE);
            let message = format!("requête SOAP illisible : {error}");
            let answer = Answer::fault(
                &service,
                "technical.parameter.noncoherentinput.request",
                &message,
            );
            return encode(answer, &Plan::default());
        }
    };
    state.counters.operation(&operation);
    let plan = faults::decide(&state.faults, &operation, wrapper.text_of("_codEtu"));
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let answer = match &plan.failure {
        Some(Failure::ServerError) => Answer::fault(
            &service,
            "technical.remoteerror",
            "erreur technique : le serveur distant ne répond pas (simulée)",
        ),
        Some(Failure::SoapFault(faultstring)) => {
            Answer::fault(&service, faultstring, "erreur simulée")
        }
        None => answer(&state, &service, &operation, Params::new(&wrapper)),
    };
    encode(answer, &plan)
}

/// The operation's answer, or the fault refusing it.
fn answer(state: &AppState, service: &str, operation: &str, request: Params) -> Answer {
    let Some(op) = operations::find(service, operation) else {
        let message = format!("opération non autorisée pour ce compte : {service}.{operation}");
        return Answer::fault(service, "technical.operation.notallowed", &message);
    };
    match op.answer(&state.data, request) {
        Ok(records) => {
            let records: Vec<soap::Param> = records
                .into_iter()
                .map(|record| record.into_param(op.record))
                .collect();
            let namespace = operations::namespace(service);
            Answer {
                status: StatusCode::OK,
                xml: soap::response_envelope_with_wrapper(
                    &namespace,
                    op.response,
                    &soap::params_xml(&records),
                ),
            }
        }
        Err(fault) => Answer::fault(service, &fault.faultstring(), fault.message()),
    }
}

/// The answer on the wire: UTF-8 or ISO-8859-1, whole or cut.
fn encode(answer: Answer, plan: &Plan) -> Response {
    let (mut bytes, content_type) = if plan.latin1 {
        (latin1(&answer.xml), LATIN1_CONTENT_TYPE)
    } else {
        (answer.xml.into_bytes(), soap::CONTENT_TYPE)
    };
    if plan.truncate {
        truncate(&mut bytes, !plan.latin1);
    }
    // A full body: hyper sends a Content-Length equal to what is sent, cut or not.
    (answer.status, [(CONTENT_TYPE, content_type)], bytes).into_response()
}

/// `xml` encoded in ISO-8859-1 with a declaration saying so. Characters Latin-1 lacks
/// (œ, €, and the C1 controls that windows-1252 readers would misread) become numeric
/// character references, so nothing is lost. Markup is ASCII: only text and attribute
/// values can hold such characters, where references are allowed.
fn latin1(xml: &str) -> Vec<u8> {
    let body = match xml.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(xml, |(_, body)| body),
        None => xml,
    };
    let mut out = Vec::with_capacity(LATIN1_DECLARATION.len() + body.len());
    out.extend_from_slice(LATIN1_DECLARATION.as_bytes());
    for c in body.chars() {
        let code = u32::from(c);
        match u8::try_from(code) {
            Ok(byte) if !(0x80..0xA0).contains(&byte) => out.push(byte),
            _ => out.extend_from_slice(format!("&#{code};").as_bytes()),
        }
    }
    out
}

/// Cuts `bytes` in the middle; in UTF-8, at a character boundary, so that a reader sees
/// a truncated document rather than an invalid byte.
fn truncate(bytes: &mut Vec<u8>, utf8: bool) {
    let mut cut = bytes.len() / 2;
    while utf8 && cut > 0 && bytes.get(cut).is_some_and(|b| (0x80..0xC0).contains(b)) {
        cut -= 1;
    }
    bytes.truncate(cut);
}

/// Whether the request carries the configured Basic credentials.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    decoded.is_some_and(|credentials| {
        credentials.split_once(':') == Some((state.username.as_str(), state.password.as_str()))
    })
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, r#"Basic realm="Apogee web services""#)],
        "401: credentials required",
    )
        .into_response()
}

/// `GET {base}/{Service}`: the WSDL with `?wsdl`, otherwise a one-line page (Axis shows
/// one too).
async fn service_page(
    State(state): State<Arc<AppState>>,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let wants_wsdl = query.is_some_and(|q| q.eq_ignore_ascii_case("wsdl"));
    if !wants_wsdl {
        let page = format!("{service}: Apogée web service simulated by conpere (add ?wsdl)\n");
        return page.into_response();
    }
    let address = format!("{}/{service}", state.base_url);
    document(wsdl::service_wsdl(state.specs_dir.as_deref(), &service, &address).await)
}

async fn abstract_file(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    spec_document(&state, &format!("abstract/{file}")).await
}

async fn schema_file(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    spec_document(&state, &format!("schemas/{path}")).await
}

async fn spec_document(state: &AppState, relative: &str) -> Response {
    match &state.specs_dir {
        Some(specs) => document(wsdl::spec_file(specs, relative).await),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn document(document: Option<Document>) -> Response {
    match document {
        Some(Document {
            bytes,
            content_type,
        }) => ([(CONTENT_TYPE, content_type)], Body::from(bytes)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_keeps_every_character() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>Cœurderoy Maëlle €\u{85}</a>";
        let bytes = latin1(xml);
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        assert_eq!(
            text,
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>C&#339;urderoy Ma\u{eb}lle &#8364;&#133;</a>"
        );
        let root = conpere_connectors::xml::parse(&bytes, Some(LATIN1_CONTENT_TYPE)).unwrap();
        assert_eq!(root.text, "Cœurderoy Maëlle €\u{85}");
    }

    #[test]
    fn truncation_cuts_at_a_character_boundary() {
        let mut bytes = "aé".repeat(5).into_bytes();
        truncate(&mut bytes, true);
        assert!(std::str::from_utf8(&bytes).is_ok());
        assert!(bytes.len() < 15 && !bytes.is_empty());
    }
}
