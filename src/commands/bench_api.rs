//! `conpere bench --contracts`, the API part: the latency of `GET /api/v1/contracts` (a
//! page of 50) and `GET /api/v1/contracts/{id}` served over HTTP on loopback, against the
//! very query each runs (`conpere_web::contracts::{page_sql, contract_sql}`) sent straight
//! to PostgreSQL, in the same run. The caller is a directeur of the largest step (the
//! typical caller; their scope is the costlier one). HTTP and SQL alternate request by
//! request, so that whatever else loads the machine weighs on both alike.

use crate::store::Store;
use conpere_contracts::catalogue::Catalogue;
use conpere_contracts::rules::Rules;
use conpere_web::auth::{Authentication, HeaderAuth};
use conpere_web::contracts::{contract_sql, page_sql};
use conpere_web::page::PageOrder;
use conpere_web::roles::{self, RolesSettings, StudentMatch};
use conpere_web::sessions::Identity;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;

/// Requests timed per route (after as many untimed, to warm both paths).
const REQUESTS: usize = 1000;
/// The page size timed.
const PAGE: i64 = 50;
/// The directeur's login.
const DIRECTEUR: &str = "bench-directeur";

/// Latencies of one path, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&self, p: f64) -> Duration {
        let rank = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }
}

/// Times both routes over HTTP and in SQL, and prints the percentiles and their ratios.
pub async fn measure_api_latency(store: &Store) -> anyhow::Result<()> {
    let client = store.pool.get().await?;
    let step: String = client
        .query_one(
            "SELECT step FROM registration WHERE deleted_at IS NULL \
             GROUP BY step ORDER BY count(*) DESC, step LIMIT 1",
            &[],
        )
        .await?
        .get(0);
    let settings = RolesSettings {
        directeurs: BTreeMap::from([(DIRECTEUR.to_string(), vec![step.clone()])]),
        ..RolesSettings::default()
    };
    let directeur = Identity::from_proxy(DIRECTEUR.into());
    let user = roles::resolve(&client, &directeur, &settings, StudentMatch::Login)
        .await
        .map_err(|e| anyhow::anyhow!("resolving the bench's directeur: {}", e.message))?;
    let (all, steps, sources, students) = user.scope();
    let secret = format!("{:032x}", rand::random::<u128>());
    let api = Arc::new(conpere_web::Api {
        pool: store.pool.clone(),
        auth: Authentication::Header(HeaderAuth {
            user_header: "X-Remote-User".into(),
            secret_header: "X-Proxy-Secret".into(),
            secret: secret.clone(),
        }),
        roles: settings,
        student_match: StudentMatch::Login,
        catalogue: Catalogue::default(),
        rules: Rules::default(),
        pages: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v1", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = conpere_web::Limits::default();
    let app = conpere_web::contracts_app(api, limits);
    let server = tokio::spawn(conpere_web::serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .header("X-Remote-User", DIRECTEUR)
            .header("X-Proxy-Secret", &secret)
            .send()
    };

    // Pages: walking the directeur's contracts by cursor, again from the start at the end.
    let page_sql = page_sql(PageOrder::Id);
    // No filter: a directeur's plain list.
    let (year, text, flagged): (Option<i32>, Option<String>, Option<bool>) = (None, None, None);
    let (mut http_pages, mut sql_pages, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    let mut after = 0_i64;
    for i in 0..2 * REQUESTS {
        let cursor = if after == 0 {
            String::new()
        } else {
            format!("&cursor={after}")
        };
        let started = Instant::now();
        let response = get(format!("/contracts?limit={PAGE}{cursor}")).await?;
        anyhow::ensure!(
            response.status() == 200,
            "GET /contracts: {}",
            response.status()
        );
        let body: serde_json::Value = serde_json::from_str(&response.text().await?)?;
        let http_took = started.elapsed();
        let params: [&(dyn ToSql + Sync); 13] = [
            &all,
            &steps,
            &sources,
            &students,
            &after,
            &year,
            &text,
            &text,
            &flagged,
            &text,
            &(PAGE + 1),
            &text,
            &text,
        ];
        let started = Instant::now();
        let rows = client.query(&page_sql, &params).await?;
        let sql_took = started.elapsed();
        let items = body["items"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(
            items == rows.len().min(PAGE as usize),
            "the API's page ({items}) is not the query's ({})",
            rows.len()
        );
        if i >= REQUESTS {
            http_pages.push(http_took);
            sql_pages.push(sql_took);
        }
        ids.extend(
            body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["id"].as_i64()),
        );
        after = body["next_cursor"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
    }
    anyhow::ensure!(!ids.is_empty(), "the directeur of {step} sees no contract");

    // One contract: each of those listed, in turn.
    let contract_sql = contract_sql();
    let (mut http_one, mut sql_one) = (Vec::new(), Vec::new());
    for i in 0..2 * REQUESTS {
        let id = ids[(i * 7919) % ids.len()];
        let started = Instant::now();
        let response = get(format!("/contracts/{id}")).await?;
        anyhow::ensure!(
            response.status() == 200,
            "GET /contracts/{id}: {}",
            response.status()
        );
        let _body = response.text().await?;
        let http_took = started.elapsed();
        let started = Instant::now();
        let row = client
            .query_opt(&contract_sql, &[&all, &steps, &sources, &students, &id])
            .await?;
        let sql_took = started.elapsed();
        anyhow::ensure!(row.is_some(), "contract #{id} not found by the API's query");
        if i >= REQUESTS {
            http_one.push(http_took);
            sql_one.push(sql_took);
        }
    }
    let _ = stop.send(());
    let _ = server.await;

    let visible: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM ({}) AS page", page_sql),
            &[
                &all,
                &steps,
                &sources,
                &students,
                &0_i64,
                &year,
                &text,
                &text,
                &flagged,
                &text,
                &i64::MAX,
                &text,
                &text,
            ],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    println!(
        "contracts API, as the directeur of {step} ({visible} contracts visible), {REQUESTS} \
         requests each, HTTP on loopback against the same query in SQL:"
    );
    report(
        &format!("GET /api/v1/contracts (page of {PAGE})"),
        http_pages,
        sql_pages,
    );
    report("GET /api/v1/contracts/{id}", http_one, sql_one);
    Ok(())
}

fn report(route: &str, http: Vec<Duration>, sql: Vec<Duration>) {
    let sorted = |mut v: Vec<Duration>| {
        v.sort();
        Latencies(v)
    };
    let (http, sql) = (sorted(http), sorted(sql));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let line = |p: f64, name: &str| {
        let (h, s) = (http.percentile(p), sql.percentile(p));
        format!(
            "{name} {:.2} ms vs {:.2} ms = {:.2}×",
            ms(h),
            ms(s),
            ms(h) / ms(s).max(1e-6)
        )
    };
    println!("    {route}: {}; {}", line(0.5, "p50"), line(0.99, "p99"));
}
