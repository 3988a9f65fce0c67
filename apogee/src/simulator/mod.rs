//! # A simulated Apogée: its SOAP web services, serving a generated university
//!
//! Tests, `conpere demo` and the benchmarks need an Apogée to read from. This module runs
//! one: a real HTTP server on `127.0.0.1` (a free port) that speaks the Apogée web
//! services as the published contract defines them (WSDL/XSD of Apogée 6.50.73, in
//! `shared/specs/apogee/wsdl`), and answers from canonical records — typically those of
//! [`conpere_synth::University`] — carried exactly as this crate's README maps
//! them, read backwards. Its answers are validated against the published XSDs in the
//! tests, so the simulator cannot drift into speaking what the adapter happens to expect.
//!
//! What it does:
//!
//! * `POST {base}/{Service}` (SOAP 1.1, document/literal wrapped, HTTP Basic) for seven
//!   read operations: `OffreFormationMetier.recupererSE_v4`,
//!   `EtudiantMetier.recupererListeEtudiants`, `.recupererInfosAdmEtu_v4`,
//!   `.recupererIdentifiantsEtudiant_v2`, `AdministratifMetier.recupererIAEtapes_v3`,
//!   `.recupererIAAnnuelles_v2` and
//!   `PedagogiqueMetier.recupererContratPedagogiqueResultatElpEpr_v6`. Every DTO field
//!   is written, in schema order, nil when the records have no value for it. "No data" is a
//!   `technical.data.nullretrieve.*` fault, a bad parameter a
//!   `technical.parameter.noncoherentinput.<param>` fault, any other operation (every
//!   write, `recupererNumeroSecuriteSociale`, other services) the fault
//!   `technical.operation.notallowed`. Faults come with HTTP 500.
//! * `GET {base}/{Service}?wsdl`: the published `<Service>_Impl.wsdl` with its address
//!   rewritten, and the files it imports under `{base}/abstract/` and `{base}/schemas/`
//!   (the relative imports resolve there); without the specs, a generated WSDL listing
//!   the operations served.
//! * Fault injection while running ([`FaultControl`]): latency, HTTP 500
//!   `technical.remoteerror`, any SOAP fault, truncated bodies, ISO-8859-1 bodies — each
//!   for one operation and/or one student, N times or until cleared.
//! * Counting ([`SimulatorStats`]): requests per operation, requests in flight and the
//!   maximum reached (what an adapter's concurrency bound must cap).
//!
//! What it does not simulate: the other operations and criteria of the contract (search
//! by name, result filters by session or deliberation state…), anything deeper than the
//! README's mapping carries (addresses, baccalauréat, groups, exams), WS-Security,
//! versions other than 6.50.73, sessions or rate limits of a real server, and Apogée's
//! own performance. Its university is in Paris: dates without a time are local midnight
//! there, sent in UTC as Axis does (`2004-06-30T22:00:00.000Z` for 1 July) for two
//! students in three, with the Paris offset for the others (`format`).
//!
//! ```no_run
//! use conpere_apogee::simulator::{self, InjectedFault, SimulatorConfig};
//! use conpere_synth::{SynthConfig, University};
//!
//! # async fn run() -> Result<(), simulator::SimulatorError> {
//! let university = University::generate(SynthConfig::new(42, 30));
//! let apogee = simulator::start(SimulatorConfig::new(university.records())).await?;
//! println!("Apogée at {}", apogee.base_url()); // http://127.0.0.1:PORT/services
//! apogee.faults().inject(InjectedFault::server_error().on_operation("recupererSE_v4").times(1));
//! // … run the adapter against apogee.base_url() with apogee.credentials() …
//! assert!(!apogee.operations_called().iter().any(|op| op.starts_with("mettreAJour")));
//! apogee.shutdown().await;
//! # Ok(()) }
//! ```

mod codes;
mod contract;
mod data;
mod dto;
mod faults;
mod format;
mod layouts;
mod offer;
mod operations;
mod params;
mod registrations;
mod server;
mod students;
mod wsdl;

pub use faults::{FaultControl, InjectedFault, Injection, SoapFaults};

use conpere_connectors::simulation::{
    RequestCounters, RequestStats, SimulatorListener, SimulatorServer,
};
use conpere_model::Record;
use server::AppState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A snapshot of the simulator's counters. `requests` counts SOAP requests per operation
/// name (the Body's wrapper element, served or refused), a body that is not a readable
/// SOAP request under `(unreadable)`; `total` and `unauthorized` count POSTs (every one
/// received; those refused for their Basic credentials, HTTP 401).
pub type SimulatorStats = RequestStats;

/// The environment variable naming the directory of the published Apogée contract (the
/// one holding `*_Impl.wsdl`, `abstract/` and `schemas/`).
pub const SPECS_ENV: &str = "CONPERE_APOGEE_SPECS";

/// User name the simulator accepts when none is configured.
pub const DEFAULT_USERNAME: &str = "ws-conpere";

/// Password the simulator accepts when none is configured.
pub const DEFAULT_PASSWORD: &str = "simulated-apogee";

/// The directory of the published contract: `$CONPERE_APOGEE_SPECS` when set, else the
/// workspace's `../shared/specs/apogee/wsdl` when it exists (a checkout); `None` on a
/// machine without them, where the simulator generates a minimal WSDL instead. The files
/// are read at run time, never copied into the repository.
pub fn default_specs_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(SPECS_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let checkout = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs/apogee/wsdl");
    checkout.is_dir().then_some(checkout)
}

/// What the simulator serves and how it is reached.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Canonical records of a university (students, structure, registrations, enrolments,
    /// results), e.g. `University::generate(…).records().collect()`.
    pub records: Vec<Record>,
    /// HTTP Basic user name required on every SOAP call.
    pub username: String,
    /// HTTP Basic password.
    pub password: String,
    /// The published contract to serve with `?wsdl` (see [`default_specs_dir`]).
    pub specs_dir: Option<PathBuf>,
}

impl SimulatorConfig {
    /// Serves `records` with the default credentials and [`default_specs_dir`].
    pub fn new(records: impl IntoIterator<Item = Record>) -> SimulatorConfig {
        SimulatorConfig {
            records: records.into_iter().collect(),
            username: DEFAULT_USERNAME.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            specs_dir: default_specs_dir(),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// No port could be opened on 127.0.0.1.
    #[error("the Apogée simulator could not listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The configured specs directory is not a directory of the published contract.
    #[error(
        "the Apogée specs directory {} is not usable ({reason}): point {SPECS_ENV} at the \
         directory holding the *_Impl.wsdl files, or leave it unset",
        path.display()
    )]
    Specs {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Starts a simulator on `127.0.0.1` (a free port) and returns once it accepts
/// connections. It runs on the current Tokio runtime until [`Simulator::shutdown`] or
/// until the handle is dropped.
pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
    if let Some(dir) = &config.specs_dir {
        check_specs_dir(dir)?;
    }
    let listener = SimulatorListener::bind()
        .await
        .map_err(SimulatorError::Bind)?;
    let address = listener.address();
    let state = Arc::new(AppState {
        data: data::Dataset::new(config.records),
        username: config.username,
        password: config.password,
        specs_dir: config.specs_dir,
        base_url: format!("http://{address}/services"),
        faults: FaultControl::default(),
        counters: RequestCounters::default(),
    });
    let server = listener.serve(server::router(Arc::clone(&state)), "Apogée");
    Ok(Simulator { server, state })
}

/// The specs directory must at least hold the service WSDLs' imports.
fn check_specs_dir(dir: &std::path::Path) -> Result<(), SimulatorError> {
    let missing = ["abstract", "schemas"]
        .into_iter()
        .find(|sub| !dir.join(sub).is_dir());
    match missing {
        None => Ok(()),
        Some(sub) => Err(SimulatorError::Specs {
            path: dir.to_path_buf(),
            reason: format!("no `{sub}` directory in it"),
        }),
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Simulator {
    server: SimulatorServer,
    state: Arc<AppState>,
}

impl Simulator {
    /// The services' base URL, `http://127.0.0.1:PORT/services`: a service is at
    /// `{base_url}/{Service}`, as the adapter's `base_url` setting expects.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// The Basic credentials it accepts: (user name, password).
    pub fn credentials(&self) -> (&str, &str) {
        (&self.state.username, &self.state.password)
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

    /// The operations called so far, each once, sorted by name (refused ones included):
    /// a read-only check is `operations_called()` holding only `recuperer…` names.
    pub fn operations_called(&self) -> Vec<String> {
        self.stats().requests.into_keys().collect()
    }

    /// Stops accepting connections, lets the requests in progress finish, and returns
    /// when the server has stopped.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("AppState")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("specs_dir", &self.specs_dir)
            .finish_non_exhaustive()
    }
}
