//! The Pégase simulator against the published contract: every INS feed page and every
//! CHC answer validates against its operation's response schema in the OpenAPI files,
//! and the token, paging, window and fault behaviours hold.

use conpere_model::{Record, Regime, RegistrationStatus};
use conpere_pegase::simulator::{
    self, routes, BearerFaults, InjectedFault, Simulator, SimulatorConfig,
};
use conpere_synth::{SynthConfig, University};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

const STUDENTS: usize = 30;

/// The published OpenAPI files: `$CONPERE_PEGASE_SPECS` or the checkout's
/// `../../shared/specs/pegase`. Missing files fail the test loudly: without them the
/// simulator would be checked against nothing.
fn specs_dir() -> PathBuf {
    let dir = std::env::var_os(simulator::SPECS_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs/pegase")
        });
    assert!(
        dir.join("inscription-ext-api-v2-2.6.0.yaml").is_file(),
        "the Pégase OpenAPI files are missing from {}: set {} to their directory",
        dir.display(),
        simulator::SPECS_ENV
    );
    dir
}

/// An OpenAPI file as JSON.
fn spec(file: &str) -> Value {
    let text = std::fs::read_to_string(specs_dir().join(file)).expect("spec readable");
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{file} does not parse: {e}"))
}

/// OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a `null` alternative of `type`.
fn adapt_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(t) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
            }
            map.values_mut().for_each(adapt_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(adapt_nullable),
        _ => {}
    }
}

/// A validator of `root` (a schema referring to `#/components/schemas/…`) with the
/// spec's components.
fn validator(mut spec: Value, root: Value) -> jsonschema::Validator {
    adapt_nullable(&mut spec);
    let mut schema = root;
    schema["components"] = spec["components"].take();
    jsonschema::validator_for(&schema).expect("the adapted schema compiles")
}

/// The INS feed's `VueInscriptions`. One adaptation: the published `VueInscription`
/// requires `statusInscription`, a typo of its declared property `statutInscription`
/// (the one Pégase sends and the notes show); the requirement is moved to the declared
/// name, and the test fails if the typo is ever fixed so the adaptation can go.
fn ins_validator() -> jsonschema::Validator {
    let mut spec = spec("inscription-ext-api-v2-2.6.0.yaml");
    let required = spec["components"]["schemas"]["VueInscription"]["required"]
        .as_array_mut()
        .expect("VueInscription.required");
    let typo = required.iter().position(|v| v == "statusInscription");
    let typo = typo.expect("the spec's statusInscription typo is gone: drop this adaptation");
    required[typo] = json!("statutInscription");
    validator(
        spec,
        json!({"$ref": "#/components/schemas/VueInscriptions"}),
    )
}

fn chc_validator() -> jsonschema::Validator {
    let root = json!({"type": "array", "items": {"$ref": "#/components/schemas/CursusPourext"}});
    validator(spec("chc-ext-api-v1-1.4.1.yml"), root)
}

fn assert_valid(validator: &jsonschema::Validator, body: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:#?}"
    );
}

struct Harness {
    university: University,
    pegase: Simulator,
    http: reqwest::Client,
    token: String,
}

impl Harness {
    async fn start(lifetime: Duration) -> Harness {
        let university = University::generate(SynthConfig::new(7, STUDENTS));
        let config = SimulatorConfig {
            token_lifetime: lifetime,
            ..SimulatorConfig::new(university.records())
        };
        let pegase = simulator::start(config).await.expect("simulator starts");
        let http = reqwest::Client::new();
        let mut harness = Harness {
            university,
            pegase,
            http,
            token: String::new(),
        };
        harness.token = harness.token_with(simulator::DEFAULT_PASSWORD).await.1;
        harness
    }

    async fn token_with(&self, password: &str) -> (u16, String) {
        let form = [
            ("username", simulator::DEFAULT_USERNAME),
            ("password", password),
            ("token", "true"),
        ];
        let response = self
            .http
            .post(self.pegase.token_url())
            .form(&form)
            .send()
            .await
            .expect("token");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.pegase.base_url());
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    /// Every page of the feed for `query`, `taille` items at a time.
    async fn feed(&self, query: &str, taille: usize) -> Vec<Value> {
        let (mut pages, mut page) = (Vec::new(), 0);
        loop {
            let body = self
                .json(&format!(
                    "{}?{query}&page={page}&taille={taille}",
                    routes::INS_FLUX
                ))
                .await;
            let total = body["totalPages"].as_u64().expect("totalPages");
            pages.push(body);
            page += 1;
            if page >= total {
                return pages;
            }
        }
    }
}

fn items(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p["resultats"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn ins_and_chc_answers_match_the_published_schemas() {
    let h = Harness::start(Duration::from_secs(60)).await;
    let (ins, chc) = (ins_validator(), chc_validator());
    let mut checked = (0, 0);
    for period in h.pegase.periods() {
        for page in h.feed(&format!("codePeriode={}", period.code), 7).await {
            assert_valid(&ins, &page, "a flux-inscriptions page");
            checked.0 += 1;
        }
        // No enrolment is on a step itself (its registration says it): ANNEE is empty.
        for kind in ["SEMESTRE", "UE", "EC"] {
            let path = format!(
                "/api/ext/chc/v1/type-objet-formation/ETAB00/{}/{kind}/cursus",
                period.code
            );
            let body = h.json(&path).await;
            assert!(
                !body.as_array().is_some_and(Vec::is_empty),
                "{path} is empty"
            );
            assert_valid(&chc, &body, &path);
            checked.1 += 1;
        }
    }
    assert!(checked.0 >= 4 && checked.1 == 6, "{checked:?}");
}

#[tokio::test]
async fn chc_paths_go_through_the_choice_list_and_by_object_matches() {
    let h = Harness::start(Duration::from_secs(60)).await;
    let choice = h
        .university
        .people()
        .find_map(|r| match r {
            Record::Enrolment(e) if e.via.is_some() => Some(e),
            _ => None,
        })
        .expect("a choice enrolment");
    let period = format!("PER-{}", choice.year);
    let path = format!(
        "/api/ext/chc/v1/objet-formation/ETAB00/{period}/{}/cursus",
        choice.node
    );
    let body = h.json(&path).await;
    assert_valid(&chc_validator(), &body, &path);
    let via = choice.via.clone().unwrap_or_default();
    let entry = body
        .as_array()
        .and_then(|a| {
            a.iter().find(|e| {
                e["objetFormation"]["chemin"]
                    .as_str()
                    .is_some_and(|c| c.contains(&via))
            })
        })
        .unwrap_or_else(|| panic!("no entry through {via}: {body}"));
    let chemin = entry["objetFormation"]["chemin"]
        .as_str()
        .unwrap_or_default();
    assert!(
        chemin.starts_with("VDI:") && chemin.ends_with(&choice.node),
        "{chemin}"
    );
    assert!(chemin.contains(&format!(">{}>", choice.step)), "{chemin}");
    assert!(entry["listeApprenants"].as_array().is_some_and(|l| l
        .iter()
        .any(|a| a["codeApprenant"] == choice.student.as_str())));
}

#[tokio::test]
async fn the_token_is_a_jwt_with_an_expiry_and_is_required() {
    let h = Harness::start(Duration::from_secs(1)).await;
    let parts: Vec<&str> = h.token.split('.').collect();
    assert_eq!(parts.len(), 3, "{}", h.token);
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("base64url");
    let payload: Value = serde_json::from_slice(&payload).expect("JSON payload");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now..=now + 2).contains(&payload["exp"].as_i64().expect("exp")),
        "{payload}"
    );
    assert_eq!(h.token_with("wrong").await.0, 401);
    let query = format!("{}?taille=10", routes::INS_FLUX);
    assert_eq!(h.get(&query).await.0, 200);
    let anonymous = h
        .http
        .get(format!("{}{query}", h.pegase.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, body) = h.get(&query).await;
    assert_eq!(status, 403, "expired token: {body}");
    let stats = h.pegase.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert!(stats.unauthorized >= 3, "{stats:?}");
}

#[tokio::test]
async fn paging_is_checked_and_covers_every_registration_once() {
    let h = Harness::start(Duration::from_secs(60)).await;
    for bad in ["taille=501", "page=0", "taille=0", "taille=abc"] {
        let (status, body) = h.get(&format!("{}?{bad}", routes::INS_FLUX)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let body: Value = serde_json::from_str(&body).expect("JSON error body");
        assert_eq!(body["statusCode"], 400);
        assert!(body["errors"][0]["code"].is_string(), "{body}");
    }
    let served: Vec<(String, String, i64)> = items(&h.feed("", 9).await)
        .iter()
        .map(|i| {
            let target = i["chemin"]
                .as_array()
                .and_then(|c| c.last())
                .cloned()
                .unwrap_or_default();
            let key = (
                i["codeApprenant"].as_str().unwrap_or_default().to_owned(),
                target["code"].as_str().unwrap_or_default().to_owned(),
                i["anneeUniversitaire"].as_i64().unwrap_or_default(),
            );
            key
        })
        .collect();
    let unique: BTreeSet<_> = served.iter().cloned().collect();
    assert_eq!(unique.len(), served.len(), "a registration served twice");
    let expected: BTreeSet<_> = h
        .university
        .people()
        .filter_map(|r| match r {
            Record::Registration(r) if r.status != RegistrationStatus::Pending => {
                Some((r.student, r.step, i64::from(r.year)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(unique, expected);
}

#[tokio::test]
async fn a_window_returns_only_what_changed_and_identities_survive() {
    let h = Harness::start(Duration::from_secs(60)).await;
    let hard = h.university.hard_cases().expect("hard cases");
    let all = items(&h.feed("", 500).await);
    let has = |field: &str, value: &str| all.iter().any(|i| i[field] == value);
    assert!(
        has("codeApprenant", &hard.leading_zero_student),
        "leading zero lost"
    );
    let accented = h
        .university
        .people()
        .find_map(|r| match r {
            Record::Student(s) if s.student == hard.accented_student => Some(s),
            _ => None,
        })
        .expect("accented student");
    assert!(has("nomFamille", &accented.family_name) || has("prenom", &accented.given_name));
    assert!(all.iter().any(|i| i["statutInscription"] == "annulee"));

    let since = chrono::Utc::now().timestamp();
    let mut left = 3;
    let changed = h.pegase.update_registrations(|r| {
        let change = left > 0 && r.status == RegistrationStatus::Active;
        if change {
            r.regime = Regime::Apprenticeship;
            left -= 1;
        }
        change
    });
    assert_eq!(changed, 3);
    let window = items(&h.feed(&format!("depuis={since}&jusqua=0"), 50).await);
    assert_eq!(window.len(), 3, "{window:#?}");
    assert!(window.iter().all(|i| i["regime"] == "12"));
    let before = items(&h.feed(&format!("depuis=0&jusqua={since}"), 500).await);
    assert_eq!(
        before.len() + 3,
        all.len(),
        "jusqua is exclusive of the changes"
    );
}

#[tokio::test]
async fn injected_faults_and_counters() {
    let h = Harness::start(Duration::from_secs(60)).await;
    let query = format!("{}?taille=5", routes::INS_FLUX);
    h.pegase.faults().inject(
        InjectedFault::server_error()
            .on_route(routes::INS_FLUX)
            .times(1),
    );
    let url = format!("{}{query}", h.pegase.base_url());
    let response = h
        .http
        .get(&url)
        .bearer_auth(&h.token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.headers().contains_key("correlationId"));
    assert!(serde_json::from_str::<Value>(&response.text().await.expect("body")).is_err());
    h.pegase
        .faults()
        .inject(InjectedFault::truncated_body().times(1));
    let (status, body) = h.get(&query).await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "not truncated: {body}"
    );
    h.pegase
        .faults()
        .inject(InjectedFault::expired_token().times(1));
    assert_eq!(h.get(&query).await.0, 401);
    assert_eq!(h.get(&query).await.0, 200);
    let stats = h.pegase.stats();
    assert_eq!(stats.requests[routes::INS_FLUX], 4);
    assert_eq!((stats.in_flight, stats.tokens_issued), (0, 1));
}

#[tokio::test]
async fn odf_serves_periods_formations_and_trees() {
    let h = Harness::start(Duration::from_secs(60)).await;
    let spaces = h
        .json("/api/odf/ext/v1/etablissement/ETAB00/espaces?type=PERIODE")
        .await;
    let period = &spaces["items"][0];
    assert_eq!(period["code"], "PER-2023");
    let id = period["id"].as_str().expect("period id");
    let formations = h
        .json(&format!(
            "/api/odf/ext/v1/etablissement/ETAB00/objets-maquette?espace={id}&typeObjetMaquette=FORMATION&page=0&taille=50"
        ))
        .await;
    let formation = &formations["items"][0];
    assert!(
        formation["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("VDI:")),
        "{formation}"
    );
    let root = formation["id"].as_str().expect("id");
    let tree = h
        .json(&format!(
            "/api/odf/ext/v1/etablissement/ETAB00/maquette/{root}"
        ))
        .await;
    assert_eq!(tree["racine"]["classe"], "FORMATION");
    let step = &tree["racine"]["enfants"][0]["objetMaquette"];
    assert!(
        step["code"].as_str().is_some_and(|c| c.starts_with("VET:")),
        "{step}"
    );
    let groupement = find_class(&tree["racine"], "GROUPEMENT").expect("a groupement");
    let detail = h
        .json(&format!(
            "/api/odf/ext/v1/etablissement/ETAB00/objets-maquette/{}",
            groupement["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        detail["descripteursObjetMaquette"]["plageDeChoix"],
        json!({"min": 1, "max": 1})
    );
    assert_eq!(
        h.get("/api/odf/ext/v1/etablissement/OTHER/espaces").await.0,
        404
    );
}

fn find_class<'a>(node: &'a Value, class: &str) -> Option<&'a Value> {
    if node["classe"] == class {
        return Some(node);
    }
    node["enfants"]
        .as_array()?
        .iter()
        .find_map(|child| find_class(&child["objetMaquette"], class))
}
