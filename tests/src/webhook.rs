//! # A real HTTP server that records the webhooks it is sent: [`WebhookReceiver`]
//!
//! An axum server on `127.0.0.1` (on a free port) that answers every request, whatever
//! its method and path, and records it as a [`ReceivedRequest`]: `200 OK` by default,
//! or a chosen error status for the next few requests ([`WebhookReceiver::fail_next`]),
//! to test a client's retries.
//!
//! ```no_run
//! # async fn demo() {
//! use conpere_tests::webhook::WebhookReceiver;
//! use std::time::Duration;
//!
//! let receiver = WebhookReceiver::start().await;
//! receiver.fail_next(1, 503);
//! // … configure the code under test with receiver.url("/hooks/sync"), make it post …
//! let requests = receiver.wait_for(2, Duration::from_secs(10)).await;
//! assert_eq!(requests[0].status, 503);
//! assert_eq!(requests[1].json()["source"], "apogee");
//! # }
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use conpere_connectors::simulation::SimulatorServer;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often [`WebhookReceiver::wait_for`] looks at what has been received.
const POLL: Duration = Duration::from_millis(10);

/// One request received by a [`WebhookReceiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The method (`"POST"` for a webhook).
    pub method: String,
    /// The path of the request target, without the query (e.g. `/hooks/abc`).
    pub path: String,
    /// The query of the request target, without the `?`, if it had one.
    pub query: Option<String>,
    /// The headers in the order received, names in lowercase; values that are not UTF-8
    /// have their invalid bytes replaced by U+FFFD.
    pub headers: Vec<(String, String)>,
    /// The body, as UTF-8 (invalid bytes replaced by U+FFFD).
    pub body: String,
    /// The status the receiver answered this request with: 200, or the status set by
    /// [`WebhookReceiver::fail_next`].
    pub status: u16,
}

impl ReceivedRequest {
    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If the body is not JSON (the message shows the body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {:?}", self.body))
    }

    /// The value of the first header named `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What the server's handler shares with the [`WebhookReceiver`] handle.
#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<ReceivedRequest>>,
    /// How many of the next requests fail, and with which status.
    failures: Mutex<(usize, u16)>,
}

impl Shared {
    fn requests(&self) -> Vec<ReceivedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A real HTTP/1.1 server on `127.0.0.1` (on a free port) that records every request
/// it receives (see the [module documentation](self)).
///
/// It runs as a task of the current tokio runtime, started by
/// [`WebhookReceiver::start`] and stopped (no new connections) when the handle is
/// dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: SimulatorServer,
}

impl WebhookReceiver {
    /// Starts a receiver that answers every request `200 OK` (until
    /// [`WebhookReceiver::fail_next`] says otherwise).
    pub async fn start() -> WebhookReceiver {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(record).with_state(shared.clone());
        let server = SimulatorServer::start(app, "webhook receiver")
            .await
            .expect("bind the webhook receiver on 127.0.0.1");
        WebhookReceiver {
            addr: server.address(),
            shared,
            _server: server,
        }
    }

    /// The URL of `path` on this receiver, e.g. `url("/hooks/abc")` is
    /// `http://127.0.0.1:PORT/hooks/abc` (a missing leading `/` is added).
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// The port the receiver listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests received so far, in the order they arrived.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.requests()
    }

    /// Waits until at least `n` requests have been received or `timeout` has passed,
    /// then returns the requests received so far (which may be fewer than `n` after a
    /// timeout, or more: the caller asserts).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= n || tokio::time::Instant::now() >= deadline {
                return requests;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Answers the next `count` requests with `status` (and a short text body) instead
    /// of `200 OK`; they are still recorded, with that status. Replaces what a previous
    /// call had left; `fail_next(0, _)` cancels it.
    ///
    /// # Panics
    /// If `status` is not a valid HTTP status code (100 to 999).
    pub fn fail_next(&self, count: usize, status: u16) {
        assert!(
            StatusCode::from_u16(status).is_ok(),
            "{status} is not an HTTP status"
        );
        *self
            .shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (count, status);
    }
}

/// The handler of every request: records it, then answers.
async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let status = {
        let mut failures = shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *failures {
            (0, _) => StatusCode::OK,
            (ref mut left, status) => {
                *left -= 1;
                StatusCode::from_u16(status).expect("checked by fail_next")
            }
        }
    };
    let request = ReceivedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: status.as_u16(),
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    let text = if status.is_success() {
        "ok"
    } else {
        "simulated failure"
    };
    (status, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PATIENCE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn posts_are_recorded_and_the_next_ones_can_be_failed() {
        let receiver = WebhookReceiver::start().await;
        let url = receiver.url("/hooks/abc");
        assert_eq!(
            url,
            format!("http://127.0.0.1:{}/hooks/abc", receiver.port())
        );
        assert_eq!(
            receiver.url("x?y=1"),
            format!("http://127.0.0.1:{}/x?y=1", receiver.port())
        );

        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let post = |body: &'static str| {
            client
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-Conpere-Event", "run.failed")
                .body(body)
                .timeout(PATIENCE)
                .send()
        };
        receiver.fail_next(2, 503);
        let statuses = [
            post(r#"{"attempt":1}"#).await.unwrap().status().as_u16(),
            post(r#"{"attempt":2}"#).await.unwrap().status().as_u16(),
            post(r#"{"attempt":3,"source":"apogée"}"#)
                .await
                .unwrap()
                .status()
                .as_u16(),
        ];
        assert_eq!(statuses, [503, 503, 200]);
        receiver.fail_next(1, 500);
        receiver.fail_next(0, 500);
        let response = post("{}").await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");

        let requests = receiver.requests();
        assert_eq!(requests.len(), 4, "{requests:#?}");
        assert_eq!(
            requests.iter().map(|r| r.status).collect::<Vec<_>>(),
            [503, 503, 200, 200]
        );
        let third = &requests[2];
        assert_eq!(third.method, "POST");
        assert_eq!(third.path, "/hooks/abc");
        assert_eq!(third.query, None);
        assert_eq!(third.json()["attempt"], 3);
        assert_eq!(third.json()["source"], "apogée");
        assert_eq!(third.header("content-type"), Some("application/json"));
        assert_eq!(third.header("X-CONPERE-EVENT"), Some("run.failed"));
        assert!(third
            .headers
            .iter()
            .any(|(n, v)| n == "x-conpere-event" && v == "run.failed"));
        assert!(third.headers.iter().all(|(n, _)| *n == n.to_lowercase()));
        assert_eq!(requests[0].json()["attempt"], 1);
    }

    #[tokio::test]
    async fn a_raw_http_request_is_recorded_and_wait_for_waits() {
        let receiver = WebhookReceiver::start().await;
        assert_eq!(receiver.wait_for(1, Duration::from_millis(50)).await, []);
        let port = receiver.port();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let body = r#"{"run":7,"status":"held"}"#;
            let request = format!(
                "POST /hooks/raw?token=t%20x HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            // Headers and body in separate writes.
            let (head, tail) = request.split_at(request.len() - body.len());
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            stream.write_all(tail.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        });
        receiver.fail_next(1, 429);
        let requests = receiver.wait_for(1, PATIENCE).await;
        assert_eq!(requests.len(), 1);
        let response = sender.await.unwrap();
        assert!(response.starts_with("HTTP/1.1 429"), "{response}");
        let request = &requests[0];
        assert_eq!(request.path, "/hooks/raw");
        assert_eq!(request.query.as_deref(), Some("token=t%20x"));
        assert_eq!(request.status, 429);
        assert_eq!(
            request.json(),
            serde_json::json!({"run": 7, "status": "held"})
        );
    }

    #[tokio::test]
    #[should_panic(expected = "not JSON")]
    async fn json_panics_on_a_body_that_is_not_json() {
        let request = ReceivedRequest {
            method: "POST".into(),
            path: "/".into(),
            query: None,
            headers: Vec::new(),
            body: "plain text".into(),
            status: 200,
        };
        request.json();
    }
}
