//! `/ready` and `/metrics` need no login, so they say no more than a status when the
//! database does not answer: not its address, not the connection error, not a password.
//! (Served over real HTTP, against a port where no PostgreSQL listens.)

use std::time::Duration;

#[tokio::test]
async fn ready_and_metrics_reveal_nothing_when_the_database_does_not_answer() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("conpere_ops")
        .dbname("conpere_nowhere")
        .password("a-password-never-shown")
        .connect_timeout(Duration::from_secs(2));
    let pool = conpere_core::db::pool(config, 2).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = conpere_web::health::routes(pool);
    let limits = conpere_web::Limits::default();
    tokio::spawn(conpere_web::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));

    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process answers");
    for path in ["/ready", "/metrics"] {
        let answer = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), 503, "{path}");
        let body = answer.text().await.unwrap();
        for internal in [
            &port.to_string(),
            "127.0.0.1",
            "conpere_ops",
            "conpere_nowhere",
            "a-password-never-shown",
            "refused",
            "error",
        ] {
            assert!(!body.contains(internal), "{path} says {internal:?}: {body}");
        }
        assert!(body.contains("see the log"), "{path}: {body}");
    }
}
