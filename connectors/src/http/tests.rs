//! The HTTP client against real local servers.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use serde::Deserialize;

use super::auth::Auth;
use super::client::HttpClient;
use super::error::HttpError;
use super::mask::log_path;
use super::request::{Outcome, RequestSpec, Response};
use super::settings::HttpSettings;
use super::tls::ca_certificates;
use super::{header, StatusCode, Url};
use crate::connector::ConnectorError;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap as AxumHeaders;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use conpere_model::FailureKind;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `router` on 127.0.0.1 and returns its address.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

fn url(address: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{address}{path}")).unwrap()
}

/// Quick settings: tiny delays, so tests take milliseconds.
fn fast() -> HttpSettings {
    HttpSettings {
        connect_timeout: 5.0,
        request_timeout: 10.0,
        retries: 3,
        retry_initial_delay_ms: 1,
        retry_max_delay_ms: 10,
        ..HttpSettings::default()
    }
}

/// A counter the handlers increment, and the number of hits so far.
#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A route answering `first` for the first `failures` hits, then 200 "ok".
async fn flaky(
    failures: usize,
    first: StatusCode,
    extra: Option<(&'static str, &'static str)>,
) -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/ws",
            get(move |State(hits): State<Hits>| async move {
                let mut headers = AxumHeaders::new();
                if let Some((name, value)) = extra {
                    headers.insert(name, HeaderValue::from_static(value));
                }
                if hits.next() <= failures {
                    (first, headers, "failing").into_response()
                } else {
                    (StatusCode::OK, headers, "ok").into_response()
                }
            }),
        )
        .with_state(hits.clone());
    (serve(router).await, hits)
}

#[tokio::test]
async fn success_returns_status_headers_and_body() {
    let router = Router::new().route(
        "/ws",
        get(|| async { ([(CONTENT_TYPE, "text/xml; charset=ISO-8859-15")], "<ok/>") }),
    );
    let address = serve(router).await;
    let client = HttpClient::new(&fast()).unwrap();
    let response = client.get(url(address, "/ws"), "probe").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.content_type(),
        Some("text/xml; charset=ISO-8859-15")
    );
    assert_eq!(response.body, b"<ok/>");
    let stats = client.stats();
    assert_eq!(
        (
            stats.requests,
            stats.retries,
            stats.failures,
            stats.bytes_received
        ),
        (1, 0, 0, 5)
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (address, hits) = flaky(2, StatusCode::INTERNAL_SERVER_ERROR, None).await;
    let client = HttpClient::new(&fast()).unwrap();
    let response = client.get(url(address, "/ws"), "probe").await.unwrap();
    assert_eq!(response.body, b"ok");
    assert_eq!(hits.count(), 3);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 0));
}

#[tokio::test]
async fn gives_up_after_the_retries_naming_operation_and_attempts() {
    let (address, hits) = flaky(usize::MAX, StatusCode::SERVICE_UNAVAILABLE, None).await;
    let settings = HttpSettings {
        retries: 2,
        ..fast()
    };
    let client = HttpClient::new(&settings).unwrap();
    let operation = "EtudiantMetier.recupererIAEtapes_v3 (student ******34)";
    let error = client
        .get(url(address, "/ws"), operation)
        .await
        .unwrap_err();
    assert_eq!(hits.count(), 3);
    assert!(matches!(
        error,
        HttpError::GaveUp {
            attempts: 3,
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..
        }
    ));
    let message = error.to_string();
    for expected in [operation, "3 attempts", "503", "SIS may also be down"] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from {message}"
        );
    }
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 1));
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let (address, hits) = flaky(1, StatusCode::TOO_MANY_REQUESTS, Some(("retry-after", "1"))).await;
    let settings = HttpSettings {
        retry_max_delay_ms: 5_000,
        ..fast()
    };
    let client = HttpClient::new(&settings).unwrap();
    let started = Instant::now();
    client.get(url(address, "/ws"), "probe").await.unwrap();
    assert_eq!(hits.count(), 2);
    // The backoff alone would wait about 1 ms; the server asked for 1 s.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_is_capped_by_the_max_delay() {
    let (address, hits) = flaky(
        1,
        StatusCode::TOO_MANY_REQUESTS,
        Some(("retry-after", "3600")),
    )
    .await;
    let settings = HttpSettings {
        retry_max_delay_ms: 200,
        ..fast()
    };
    let client = HttpClient::new(&settings).unwrap();
    let started = Instant::now();
    let call = client.get(url(address, "/ws"), "probe");
    // Uncapped, this would wait an hour.
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hits.count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (address, hits) = flaky(usize::MAX, StatusCode::NOT_FOUND, None).await;
    let client = HttpClient::new(&fast()).unwrap();
    let error = client.get(url(address, "/ws"), "probe").await.unwrap_err();
    assert_eq!(hits.count(), 1);
    assert!(matches!(
        error,
        HttpError::Rejected {
            status: StatusCode::NOT_FOUND,
            ..
        }
    ));
    assert!(error.to_string().contains("check the URL"), "{error}");
}

const USERNAME: &str = "ws-conpere";
const PASSWORD: &str = "s3cr3t-pw";
/// base64("ws-conpere:s3cr3t-pw"), computed independently of reqwest.
const EXPECTED_BASIC: &str = "Basic d3MtY29ucGVyZTpzM2NyM3QtcHc=";

async fn guarded() -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/ws",
            get(
                |State(hits): State<Hits>, headers: AxumHeaders| async move {
                    hits.next();
                    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if authorization == Some(EXPECTED_BASIC) {
                        StatusCode::OK
                    } else {
                        StatusCode::UNAUTHORIZED
                    }
                },
            ),
        )
        .with_state(hits.clone());
    (serve(router).await, hits)
}

#[tokio::test]
async fn basic_auth_is_sent_and_never_shown() {
    let (address, _) = guarded().await;
    let client = HttpClient::builder(&fast())
        .auth(Auth::basic(USERNAME, PASSWORD))
        .build()
        .unwrap();
    let response = client.get(url(address, "/ws"), "probe").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    let shown = format!("{client:?} {:?}", Auth::basic(USERNAME, PASSWORD));
    assert!(
        !shown.contains(PASSWORD) && !shown.contains(USERNAME),
        "{shown}"
    );
}

#[tokio::test]
async fn a_request_s_own_credentials_win_over_the_client_s() {
    let (address, _) = guarded().await;
    let client = HttpClient::builder(&fast())
        .auth(Auth::basic(USERNAME, "wrong-pw"))
        .build()
        .unwrap();
    let request =
        RequestSpec::get(url(address, "/ws"), "probe").auth(Auth::basic(USERNAME, PASSWORD));
    let response = client.send(request, Outcome::by_status).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    // A request carrying its own Authorization header (a bearer token) gets no other.
    let bearer = RequestSpec::get(url(address, "/ws"), "probe")
        .auth(Auth::basic(USERNAME, PASSWORD))
        .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
    let error = client.send(bearer, Outcome::by_status).await.unwrap_err();
    assert!(matches!(error, HttpError::AuthRefused { .. }), "{error}");
}

#[tokio::test]
async fn refused_credentials_are_not_retried_and_reported_as_auth() {
    let (address, hits) = guarded().await;
    let client = HttpClient::builder(&fast())
        .auth(Auth::basic(USERNAME, "wrong-pw"))
        .build()
        .unwrap();
    let error = client.get(url(address, "/ws"), "probe").await.unwrap_err();
    assert_eq!(hits.count(), 1);
    assert!(matches!(
        error,
        HttpError::AuthRefused {
            status: StatusCode::UNAUTHORIZED,
            ..
        }
    ));
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("authentication refused") && shown.contains("password_env"),
        "{shown}"
    );
    assert!(
        !shown.contains("wrong-pw") && !shown.contains(USERNAME),
        "{shown}"
    );
}

#[tokio::test]
async fn extra_and_secret_headers_are_sent_and_never_shown() {
    let router = Router::new().route(
        "/ws",
        get(|headers: AxumHeaders| async move {
            let tenant = headers.get("x-tenant").is_some_and(|v| v == "univ-exemple");
            let key = headers
                .get("x-gateway-key")
                .is_some_and(|v| v == "k3y-s3cret");
            if tenant && key {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            }
        }),
    );
    let address = serve(router).await;
    let mut settings = fast();
    settings
        .headers
        .insert("X-Tenant".into(), "univ-exemple".into());
    let builder = HttpClient::builder(&settings).header("X-Gateway-Key", "k3y-s3cret");
    let shown = format!("{builder:?}");
    let client = builder.build().unwrap();
    client.get(url(address, "/ws"), "probe").await.unwrap();
    let shown = format!("{shown} {client:?} {settings:?}");
    assert!(
        !shown.contains("k3y-s3cret") && !shown.contains("univ-exemple"),
        "{shown}"
    );
    assert!(
        format!("{client:?}").contains("X-Gateway-Key"),
        "{client:?}"
    );
}

#[tokio::test]
async fn invalid_header_value_is_named_but_not_shown() {
    let error = HttpClient::builder(&fast())
        .header("X-Gateway-Key", "line\nbreak-s3cret")
        .build()
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("X-Gateway-Key") && !message.contains("s3cret"),
        "{message}"
    );
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound() {
    #[derive(Clone, Default)]
    struct Load {
        in_flight: Arc<AtomicUsize>,
        max: Arc<AtomicUsize>,
    }
    let load = Load::default();
    let router = Router::new()
        .route(
            "/ws",
            get(|State(load): State<Load>| async move {
                let now = load.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                load.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                load.in_flight.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .with_state(load.clone());
    let address = serve(router).await;
    let client = HttpClient::new(&HttpSettings {
        concurrency: 3,
        ..fast()
    })
    .unwrap();
    let calls = (0..20).map(|i| {
        let client = client.clone();
        let url = url(address, "/ws");
        tokio::spawn(async move { client.get(url, format!("call {i}")).await })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    let max = load.max.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} requests in flight with a bound of 3");
    assert!(
        max >= 2,
        "the bound should still allow parallel requests (max {max})"
    );
    assert_eq!(client.stats().requests, 20);
}

#[tokio::test]
async fn requests_per_second_spreads_attempts() {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let router = Router::new()
        .route(
            "/ws",
            get(
                |State(arrivals): State<Arc<Mutex<Vec<Instant>>>>| async move {
                    arrivals.lock().unwrap().push(Instant::now());
                    "ok"
                },
            ),
        )
        .with_state(arrivals.clone());
    let address = serve(router).await;
    let settings = HttpSettings {
        requests_per_second: Some(20.0),
        concurrency: 10,
        ..fast()
    };
    let client = HttpClient::new(&settings).unwrap();
    let calls = (0..10).map(|i| client.get(url(address, "/ws"), format!("call {i}")));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let arrivals = arrivals.lock().unwrap();
    let span = *arrivals.iter().max().unwrap() - *arrivals.iter().min().unwrap();
    // 10 attempts at 20 per second without burst: the last starts 9 × 50 ms after the
    // first. Only a lower bound is asserted, so a slow machine cannot make this fail.
    assert!(
        span >= Duration::from_millis(400),
        "10 requests within {span:?}"
    );
    // The limiter's own accounting: all ten were sent at once, so at most one went
    // through without waiting.
    assert!(client.stats().rate_limited >= 5, "{:?}", client.stats());
}

#[tokio::test]
async fn body_over_the_cap_is_refused_with_or_without_length() {
    let router = Router::new()
        .route("/announced", get(|| async { vec![b'x'; 4096] }))
        .route(
            "/streamed",
            get(|| async {
                let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024])));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        );
    let address = serve(router).await;
    let client = HttpClient::new(&HttpSettings {
        max_body_bytes: 2000,
        ..fast()
    })
    .unwrap();
    for path in ["/announced", "/streamed"] {
        let error = client.get(url(address, path), "big").await.unwrap_err();
        assert!(
            matches!(error, HttpError::BodyTooLarge { limit: 2000, .. }),
            "{path}: {error}"
        );
        assert!(error.to_string().contains("max_body_bytes"), "{error}");
    }
    // Neither was retried, and the streamed one stopped before reading everything.
    let stats = client.stats();
    assert_eq!(stats.requests, 2);
    assert!(stats.bytes_received < 4096, "{stats:?}");
}

#[tokio::test]
async fn body_cut_short_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let hits = Hits::default();
    let server_hits = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buffer).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            let answer: &[u8] = if server_hits.next() == 1 {
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nwhole"
            };
            socket.write_all(answer).await.unwrap();
            // Dropping the socket closes the connection, cutting the first body short.
        }
    });
    let client = HttpClient::new(&fast()).unwrap();
    let response = client.get(url(address, "/ws"), "probe").await.unwrap();
    assert_eq!(response.body, b"whole");
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn unreachable_server_gives_up_without_leaking_the_query() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = HttpClient::new(&HttpSettings {
        retries: 1,
        ..fast()
    })
    .unwrap();
    let target = url(address, "/ws/etudiants/21901234?codEtu=21901234");
    let error = client.get(target, "probe").await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("could not connect") && message.contains("2 attempts"),
        "{message}"
    );
    assert!(!message.contains("21901234"), "{message}");
}

#[tokio::test]
async fn slow_server_times_out() {
    let router = Router::new().route(
        "/ws",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let address = serve(router).await;
    let settings = HttpSettings {
        request_timeout: 0.2,
        retries: 0,
        ..fast()
    };
    let client = HttpClient::new(&settings).unwrap();
    let error = client.get(url(address, "/ws"), "probe").await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("timed out") && message.contains("1 attempt;"),
        "{message}"
    );
}

#[tokio::test]
async fn the_classifier_decides_done_retry_and_fail() {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/soap",
            post(|State(hits): State<Hits>, body: String| async move {
                let n = hits.next();
                match body.as_str() {
                    "nodata" => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "technical.data.nullretrieve.etudiant",
                    ),
                    "flaky" if n == 1 => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "technical.remoteerror")
                    }
                    "bad" => (
                        StatusCode::OK,
                        "technical.parameter.noncoherentinput.codEtu",
                    ),
                    _ => (StatusCode::OK, "<ok/>"),
                }
            }),
        )
        .with_state(hits.clone());
    let address = serve(router).await;
    let client = HttpClient::new(&fast()).unwrap();
    let classify = |response: &Response| {
        let body = String::from_utf8_lossy(&response.body);
        if body.contains("nullretrieve") {
            Outcome::Done
        } else if body.contains("technical.parameter") {
            Outcome::Fail("SOAP fault technical.parameter: check the request".into())
        } else if response.status.is_server_error() {
            Outcome::Retry("SOAP fault".into())
        } else {
            Outcome::by_status(response)
        }
    };
    let send = |body: &'static str| {
        client.send(
            RequestSpec::post(url(address, "/soap"), body).body(body),
            classify,
        )
    };
    let flaky = send("flaky").await.unwrap();
    assert_eq!((flaky.body.as_slice(), hits.count()), (&b"<ok/>"[..], 2));
    let no_data = send("nodata").await.unwrap();
    assert_eq!(no_data.status, StatusCode::INTERNAL_SERVER_ERROR);
    let error = send("bad").await.unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::Rejected {
                status: StatusCode::OK,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(hits.count(), 4);
}

#[test]
fn settings_have_defaults_and_flatten_into_an_adapter_config() {
    let defaults: HttpSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(defaults, HttpSettings::default());
    assert_eq!(
        (defaults.connect_timeout, defaults.request_timeout),
        (10.0, 120.0)
    );
    assert_eq!((defaults.concurrency, defaults.retries), (4, 4));
    assert_eq!(defaults.max_body_bytes, 64 * 1024 * 1024);

    #[derive(Deserialize)]
    struct Adapter {
        base_url: String,
        #[serde(flatten)]
        http: HttpSettings,
    }
    let config = crate::SourceConfig::from_toml(
        "apogee",
        r#"
        [sources.apogee]
        kind = "apogee"
        base_url = "https://apogee.example.fr/ws"
        request_timeout = 30
        requests_per_second = 2.5
        ca_file = "/etc/ssl/univ-ca.pem"
        headers = { "X-Tenant" = "univ" }
        "#,
    )
    .unwrap();
    let adapter: Adapter = config.settings().unwrap();
    assert_eq!(adapter.base_url, "https://apogee.example.fr/ws");
    assert_eq!(adapter.http.request_timeout, 30.0);
    assert_eq!(adapter.http.requests_per_second, Some(2.5));
    assert_eq!(
        adapter.http.ca_file,
        Some(PathBuf::from("/etc/ssl/univ-ca.pem"))
    );
    assert_eq!(
        adapter.http.headers.get("X-Tenant").map(String::as_str),
        Some("univ")
    );
    assert_eq!(adapter.http.concurrency, 4);
}

#[test]
fn invalid_settings_name_the_key() {
    let cases = [
        (
            HttpSettings {
                concurrency: 0,
                ..fast()
            },
            "concurrency",
        ),
        (
            HttpSettings {
                requests_per_second: Some(0.0),
                ..fast()
            },
            "requests_per_second",
        ),
        (
            HttpSettings {
                requests_per_second: Some(f64::NAN),
                ..fast()
            },
            "requests_per_second",
        ),
        (
            HttpSettings {
                requests_per_second: Some(1e-300),
                ..fast()
            },
            "requests_per_second",
        ),
        (
            HttpSettings {
                request_timeout: -1.0,
                ..fast()
            },
            "request_timeout",
        ),
        (
            HttpSettings {
                retry_initial_delay_ms: 0,
                ..fast()
            },
            "retry_initial_delay_ms",
        ),
        (
            HttpSettings {
                retry_max_delay_ms: 0,
                ..fast()
            },
            "retry_max_delay_ms",
        ),
        (
            HttpSettings {
                user_agent: "a\nb".into(),
                ..fast()
            },
            "user_agent",
        ),
    ];
    for (settings, key) in cases {
        let message = HttpClient::new(&settings).unwrap_err().to_string();
        assert!(message.contains(key), "{key}: {message}");
    }
}

/// Two throwaway self-signed CA certificates (public data, no key).
const CA_BUNDLE: &str = "\
-----BEGIN CERTIFICATE-----
MIIBkDCCATWgAwIBAgIUFLaRAyfNKtcpG02mKlNTPWo4E9EwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRY29ucGVyZSB0ZXN0IENBIDEwIBcNMjYxMTI4MjAyMTU1WhgP
MjEyNjExMDQyMDIxNTVaMBwxGjAYBgNVBAMMEWNvbnBlcmUgdGVzdCBDQSAxMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgkr/c01c/LQGvZPsKF6upgvHXgnYAYYn
/WzZ/AkuCNQdfZ4Sm0GboYUh4zjdFnKizNxDrUa68b0lGtXvS1Z7pqNTMFEwHQYD
VR0OBBYEFMAWPRCePqupvkUZ0fCGaExxNuDVMB8GA1UdIwQYMBaAFMAWPRCePqup
vkUZ0fCGaExxNuDVMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh
APrf0wqQpRsNBFrSFfFeqUg2Ypumqp70SUIVgauDUd81AiEA74WJyQo3PzTN27mA
e9mymd0p4ZdIMKxpwHGqCmjBf88=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUdrTEawHaZfnbvXBzt9kLyiGxYmgwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRY29ucGVyZSB0ZXN0IENBIDIwIBcNMjYxMTI4MjAyMTU1WhgP
MjEyNjExMDQyMDIxNTVaMBwxGjAYBgNVBAMMEWNvbnBlcmUgdGVzdCBDQSAyMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7Zpdc/bkZv4swng4yaqmlv01YFBxnIZj
jvfOU5epDN5iLEKJMz7jLSLJB1ImFG2r/gyV1pTBlTMQI4MCxfcZPqNTMFEwHQYD
VR0OBBYEFFWxqam8pmkHZ1CkWlQx7UagxMfrMB8GA1UdIwQYMBaAFFWxqam8pmkH
Z1CkWlQx7UagxMfrMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg
FBrpL2MlXSYdJqq17ik0dKSQ1uinEfEigJHyNYm9fE4CIQC/C2l+iOx43jDw2hEp
IgAWWERESTMaFjqUXXQENuI+uQ==
-----END CERTIFICATE-----
";

fn with_ca_file(contents: &str) -> (tempfile::TempDir, HttpSettings) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("univ-ca.pem");
    std::fs::write(&path, contents).unwrap();
    (
        dir,
        HttpSettings {
            ca_file: Some(path),
            ..fast()
        },
    )
}

#[test]
fn a_ca_bundle_with_several_certificates_is_accepted() {
    let (_dir, settings) = with_ca_file(CA_BUNDLE);
    assert_eq!(
        ca_certificates(settings.ca_file.as_deref().unwrap())
            .unwrap()
            .len(),
        2
    );
    HttpClient::new(&settings).unwrap();
}

#[test]
fn unusable_ca_files_are_named() {
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    for contents in ["not a certificate\n", garbage] {
        let (_dir, settings) = with_ca_file(contents);
        let error = HttpClient::new(&settings).unwrap_err();
        assert!(
            matches!(error, HttpError::CaFile { .. }),
            "{contents:?}: {error}"
        );
        assert!(error.to_string().contains("univ-ca.pem"), "{error}");
    }
    let missing = HttpSettings {
        ca_file: Some("/nonexistent/univ-ca.pem".into()),
        ..fast()
    };
    let error = HttpClient::new(&missing).unwrap_err().to_string();
    assert!(
        error.contains("/nonexistent/univ-ca.pem") && error.contains("ca_file"),
        "{error}"
    );
}

#[test]
fn a_client_certificate_without_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, CA_BUNDLE).unwrap();
    let settings = HttpSettings {
        client_cert_file: Some(path),
        ..fast()
    };
    let error = HttpClient::new(&settings).unwrap_err().to_string();
    assert!(
        error.contains("client.pem") && error.contains("client_cert_file"),
        "{error}"
    );
}

#[test]
fn logged_paths_have_no_query_and_masked_identifiers() {
    let url = Url::parse(
        "https://sis.example.fr/api/v3/apprenants/000123456/inscriptions/2024?ine=1234567890A",
    )
    .unwrap();
    assert_eq!(
        log_path(&url),
        "/api/v3/apprenants/*******56/inscriptions/2024"
    );
    let request = RequestSpec::get(url, "probe").body("secret body");
    let shown = format!("{request:?}");
    assert!(
        !shown.contains("1234567890A") && !shown.contains("secret body"),
        "{shown}"
    );
}

#[test]
fn connector_errors_keep_operation_and_advice() {
    let error = HttpError::AuthRefused {
        operation: "EtudiantMetier WSDL".into(),
        status: StatusCode::FORBIDDEN,
    };
    let ConnectorError::Failed(failed) = ConnectorError::from(error) else {
        panic!("not a Failed error");
    };
    assert_eq!(failed.operation, "EtudiantMetier WSDL");
    assert!(
        failed.message.starts_with("authentication refused"),
        "{failed}"
    );
    assert_eq!(failed.kind, FailureKind::Refused);
}
