//! # A simulated Pégase: its REST APIs, serving a generated university
//!
//! Tests, `conpere demo` and the benchmarks need a Pégase to read from. This module runs
//! one: a real HTTP server on `127.0.0.1` (a free port) that speaks the Pégase APIs the
//! adapter reads, as the published OpenAPI files (`shared/specs/pegase`) and the notes
//! (`shared/specs/notes/pegase*.md`) define them, and answers from canonical records —
//! typically those of [`conpere_synth::University`] — carried as this crate's
//! README ("Mapping") states, read backwards. The tests validate its INS and CHC answers
//! against the published response schemas, so it cannot drift into speaking what the
//! adapter happens to expect.
//!
//! What it does (every path under [`Simulator::base_url`], see [`routes`]):
//!
//! * `POST /cas/v1/tickets` (form `username`, `password`, `token=true`): 201 with a raw
//!   JWT whose `exp` is now + [`SimulatorConfig::token_lifetime`]; wrong credentials 401.
//!   Every other route wants `Authorization: Bearer <jwt>`: 401 when missing, malformed
//!   or not issued here, 403 once expired.
//! * INS ext v2 `flux-inscriptions/pagine`: registrations modified in a window,
//!   [`Simulator::update_registrations`] moves some forward while it runs.
//! * CHC ext v1 `cursus` by object type and by object code, from the enrolments.
//! * ODF ext v1 periods (`espaces`), objects (`objets-maquette`), details and trees
//!   (`maquette/{id}`), from the nodes and edges.
//! * Faults while running ([`FaultControl`]): latency, non-JSON 500, 401 as for an
//!   expired token, truncated bodies — per route, N times or until cleared.
//! * Counting ([`SimulatorStats`]): requests per route, in flight, maximum in flight,
//!   tokens issued.
//!
//! What it does not simulate: the per-learner routes (INS dossier, CHC `cursus?
//! codeApprenant`), photos, addresses and contacts, results (COC), IDT, REF
//! nomenclatures, write routes, rate limits, and Pégase's own performance.
//!
//! ```no_run
//! use conpere_pegase::simulator::{self, routes, BearerFaults, InjectedFault, SimulatorConfig};
//! use conpere_synth::{SynthConfig, University};
//!
//! # async fn run() -> Result<(), simulator::SimulatorError> {
//! let university = University::generate(SynthConfig::new(42, 30));
//! let pegase = simulator::start(SimulatorConfig::new(university.records())).await?;
//! println!("token at {}", pegase.token_url());
//! pegase.faults().inject(InjectedFault::server_error().on_route(routes::INS_FLUX).times(1));
//! // … run the adapter against pegase.base_url() with pegase.credentials() …
//! pegase.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
mod cas;
mod chc;
mod codes;
mod data;
mod faults;
mod http;
mod ins;
mod odf;
mod server;
mod state;
mod stats;

pub use faults::{BearerFaults, FaultControl, InjectedFault, Injection};
pub use stats::SimulatorStats;

use conpere_connectors::simulation::SimulatorServer;
use conpere_model::{Record, Registration};
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The route templates served (the keys of `requests` in [`SimulatorStats`] and of
/// [`InjectedFault::on_route`]).
pub mod routes {
    /// The CAS token.
    pub const TOKEN: &str = "/cas/v1/tickets";
    /// INS ext v2 registration feed.
    pub const INS_FLUX: &str = "/api/ins/ext/v2/gestion/flux-inscriptions/pagine";
    /// CHC ext v1 learners of every object of a type.
    pub const CHC_TYPE_CURSUS: &str =
        "/api/ext/chc/v1/type-objet-formation/{cs}/{periode}/{type}/cursus";
    /// CHC ext v1 learners of one object.
    pub const CHC_OBJECT_CURSUS: &str =
        "/api/ext/chc/v1/objet-formation/{cs}/{periode}/{code}/cursus";
    /// ODF ext v1 periods.
    pub const ODF_SPACES: &str = "/api/odf/ext/v1/etablissement/{cs}/espaces";
    /// ODF ext v1 objects of a period.
    pub const ODF_OBJECTS: &str = "/api/odf/ext/v1/etablissement/{cs}/objets-maquette";
    /// ODF ext v1 detail of an object.
    pub const ODF_OBJECT: &str = "/api/odf/ext/v1/etablissement/{cs}/objets-maquette/{id}";
    /// ODF ext v1 tree under an object.
    pub const ODF_TREE: &str = "/api/odf/ext/v1/etablissement/{cs}/maquette/{id}";
}

/// The environment variable naming the directory of the published Pégase OpenAPI files.
pub const SPECS_ENV: &str = "CONPERE_PEGASE_SPECS";

/// User name the simulator accepts when none is configured.
pub const DEFAULT_USERNAME: &str = "svc-api";

/// Password the simulator accepts when none is configured.
pub const DEFAULT_PASSWORD: &str = "simulated-pegase";

/// `codeStructure` served when none is configured.
pub const DEFAULT_STRUCTURE: &str = "ETAB00";

/// A period (espace of type PERIODE) and the academic year it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Its code, chosen locally (`PER-2024`, `PERIODE-24-25`…).
    pub code: String,
    /// Academic year (start year) of its records.
    pub year: i32,
}

/// What the simulator serves and how it is reached.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Canonical records of a university, e.g. `University::generate(…).records()`.
    pub records: Vec<Record>,
    /// Service account user name of the token route.
    pub username: String,
    /// Its password.
    pub password: String,
    /// `codeStructure` of the institution.
    pub structure: String,
    /// UAI of the institution (the feed's `UAI`).
    pub uai: String,
    /// Periods served; records of other years are not reachable.
    pub periods: Vec<Period>,
    /// How long a token lives (Pégase does not document it: keep it short in tests so
    /// that long syncs must renew).
    pub token_lifetime: Duration,
}

/// The code the simulator gives by default to the period of academic year `year`
/// (`PER-2024`).
pub fn default_period_code(year: i32) -> String {
    format!("PER-{year}")
}

impl SimulatorConfig {
    /// Serves `records` with the default credentials and structure, one period
    /// `PER-<year>` per year found in the records, tokens living 60 s.
    pub fn new(records: impl IntoIterator<Item = Record>) -> SimulatorConfig {
        let records: Vec<Record> = records.into_iter().collect();
        let mut years: Vec<i32> = records.iter().filter_map(Record::year).collect();
        years.sort_unstable();
        years.dedup();
        SimulatorConfig {
            records,
            username: DEFAULT_USERNAME.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            structure: DEFAULT_STRUCTURE.to_owned(),
            uai: "0999999Z".to_owned(),
            periods: years
                .into_iter()
                .map(|year| Period {
                    code: default_period_code(year),
                    year,
                })
                .collect(),
            token_lifetime: Duration::from_secs(60),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// No port could be opened on 127.0.0.1.
    #[error("the Pégase simulator could not listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
}

/// How long before the start the most recent served registration was last modified: far
/// enough that a window starting at the start holds only what tests change afterwards.
const INITIAL_AGE_SECS: i64 = 86_400;

/// Over how long before that the served registrations were modified, spread evenly as a
/// real tenant's are (registrations are validated over weeks): an incremental read then
/// re-reads only the overlap before its high-water mark, not everything.
pub const INITIAL_SPREAD_SECS: i64 = 30 * 86_400;

/// Starts a simulator on `127.0.0.1` (a free port) and returns once it accepts
/// connections. It runs on the current Tokio runtime until [`Simulator::shutdown`] or
/// until the handle is dropped.
pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
    let state = Arc::new(AppState {
        data: data::Dataset::new(
            config.records,
            http::now() - INITIAL_AGE_SECS,
            INITIAL_SPREAD_SECS,
        ),
        structure: config.structure,
        uai: config.uai,
        periods: config.periods,
        tokens: auth::Tokens::new(config.username, config.password, config.token_lifetime),
        faults: FaultControl::default(),
        counters: stats::Counters::default(),
    });
    let server = SimulatorServer::start(server::router(Arc::clone(&state)), "Pégase")
        .await
        .map_err(SimulatorError::Bind)?;
    Ok(Simulator { server, state })
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    server: SimulatorServer,
    state: Arc<AppState>,
}

impl Simulator {
    /// The base URL of every module, `http://127.0.0.1:PORT` (a real tenant has one host
    /// per module; here they share one).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address())
    }

    /// The token URL, `{base_url}/cas/v1/tickets`.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), routes::TOKEN)
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// The credentials it accepts: (user name, password).
    pub fn credentials(&self) -> (&str, &str) {
        (&self.state.tokens.username, &self.state.tokens.password)
    }

    /// The `codeStructure` it serves.
    pub fn structure(&self) -> &str {
        &self.state.structure
    }

    /// The periods it serves.
    pub fn periods(&self) -> &[Period] {
        &self.state.periods
    }

    /// Changes registrations while it runs: `change` sees each one and returns whether it
    /// modified it; those get `derniereModification` = now, so an incremental read of the
    /// feed sees them. Returns how many changed. (Changing a registration's key — year,
    /// student, step — makes it another registration, as in Pégase.)
    pub fn update_registrations(&self, change: impl FnMut(&mut Registration) -> bool) -> usize {
        ins::touch(&self.state, change)
    }

    /// The fault injection switches, usable while the simulator runs.
    pub fn faults(&self) -> &FaultControl {
        &self.state.faults
    }

    /// The counters now.
    pub fn stats(&self) -> SimulatorStats {
        self.state.counters.snapshot()
    }

    /// Counters back to zero (requests still in flight stay counted as such).
    pub fn reset_stats(&self) {
        self.state.counters.reset();
    }

    /// Stops accepting connections, lets the requests in progress finish, and returns
    /// when the server has stopped.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password nor the tokens.
        f.debug_struct("AppState")
            .field("structure", &self.structure)
            .field("periods", &self.periods)
            .finish_non_exhaustive()
    }
}
