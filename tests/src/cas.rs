//! # A small CAS 3.0 server for the tests: [`CasServer`]
//!
//! Real HTTP on `127.0.0.1` (a free port), following the CAS 3.0 specification: `GET
//! /cas/login?service=S` logs the browser in as the configured person at once and sends
//! it to `S?ticket=ST-…`; `GET /cas/p3/serviceValidate?service=S&ticket=T` answers
//! `<cas:authenticationSuccess>` with the user and its attributes, once per ticket and
//! only for the service it was issued to (`INVALID_TICKET`, `INVALID_SERVICE` otherwise);
//! `GET /cas/logout` says goodbye. The tickets issued are kept for the tests (to replay
//! one, or to send the single-logout request that names it).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The person logged in, and the server's memory.
#[derive(Default)]
struct Memory {
    user: String,
    attributes: Vec<(String, String)>,
    /// Tickets not yet validated: ticket → service.
    open: HashMap<String, String>,
    issued: Vec<String>,
}

/// A CAS server, running.
pub struct CasServer {
    base: String,
    memory: Arc<Mutex<Memory>>,
}

impl CasServer {
    /// A server whose logins are `user`, with `attributes` (name, value).
    pub async fn start(user: &str, attributes: &[(&str, &str)]) -> CasServer {
        let memory = Arc::new(Mutex::new(Memory {
            user: user.to_owned(),
            attributes: (attributes.iter())
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Memory::default()
        }));
        let app = Router::new()
            .route("/cas/login", get(login))
            .route("/cas/p3/serviceValidate", get(validate))
            .route("/cas/logout", get(|| async { "logged out of CAS" }))
            .with_state(Arc::clone(&memory));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/cas", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        CasServer { base, memory }
    }

    /// The server's base URL (`[auth] cas_url`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Who logs in from now on.
    pub fn log_in_as(&self, user: &str) {
        self.memory.lock().unwrap().user = user.to_owned();
    }

    /// The tickets issued so far, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.memory.lock().unwrap().issued.clone()
    }
}

async fn login(
    State(memory): State<Arc<Mutex<Memory>>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(service) = query.get("service") else {
        return (StatusCode::BAD_REQUEST, "no service").into_response();
    };
    let mut memory = memory.lock().unwrap();
    let ticket = format!(
        "ST-{}-{:016x}",
        memory.issued.len() + 1,
        rand::random::<u64>()
    );
    memory.open.insert(ticket.clone(), service.clone());
    memory.issued.push(ticket.clone());
    let separator = if service.contains('?') { '&' } else { '?' };
    let location = format!("{service}{separator}ticket={ticket}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn validate(
    State(memory): State<Arc<Mutex<Memory>>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut memory = memory.lock().unwrap();
    let (service, ticket) = (query.get("service"), query.get("ticket"));
    let issued_for = ticket.and_then(|t| memory.open.remove(t));
    let body = match (issued_for, service) {
        (Some(issued_for), Some(service)) if &issued_for == service => {
            let attributes: String = (memory.attributes.iter())
                .map(|(n, v)| format!("<cas:{n}>{v}</cas:{n}>"))
                .collect();
            format!(
                "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
                 <cas:authenticationSuccess><cas:user>{}</cas:user>\
                 <cas:attributes>{attributes}</cas:attributes>\
                 </cas:authenticationSuccess></cas:serviceResponse>",
                memory.user
            )
        }
        (issued, _) => {
            let code = if issued.is_some() {
                "INVALID_SERVICE"
            } else {
                "INVALID_TICKET"
            };
            format!(
                "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
                 <cas:authenticationFailure code=\"{code}\">Ticket {} not recognized\
                 </cas:authenticationFailure></cas:serviceResponse>",
                ticket.map_or("", String::as_str)
            )
        }
    };
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}
