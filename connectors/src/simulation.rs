//! Building blocks for SIS simulators (tests, demos, benchmarks).
//!
//! An adapter is tested against a simulated SIS: a real HTTP server on `127.0.0.1` that
//! speaks the SIS's protocol, counts what the adapter asks and misbehaves on demand. What
//! the protocol is (SOAP operations, REST routes…) belongs to each adapter's simulator;
//! the plumbing around it is the same for all of them and lives here:
//!
//! * [`RequestCounters`] and its [`RequestStats`] snapshot: requests per operation, in
//!   total, refused for their credentials, in flight and the most ever in flight (what an
//!   adapter's concurrency bound must cap);
//! * [`FaultScope`]: which requests an injected fault applies to (an operation, a subject,
//!   a number of times), and [`FaultControl`], the faults in force — what a fault does is
//!   each simulator's own;
//! * [`SimulatorServer`]: an [`axum::Router`] served on a free port of `127.0.0.1` until
//!   it is shut down or dropped.
//!
//! ```no_run
//! use axum::{extract::State, routing::get, Router};
//! use conpere_connectors::simulation::{RequestCounters, SimulatorServer};
//! use std::sync::Arc;
//!
//! async fn ping(State(counters): State<Arc<RequestCounters>>) -> &'static str {
//!     let _in_flight = counters.start();
//!     counters.operation("/ping");
//!     "pong"
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let counters = Arc::new(RequestCounters::default());
//! let app = Router::new()
//!     .route("/ping", get(ping))
//!     .with_state(Arc::clone(&counters));
//! let server = SimulatorServer::start(app, "ping").await?;
//! println!("listening on {}", server.address());
//! // … point a client at server.address() …
//! println!("{:?}", counters.snapshot());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A snapshot of a simulator's request counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Requests per operation, served or refused; what an operation is depends on the
    /// simulator (a SOAP operation name, a REST route template…).
    pub requests: BTreeMap<String, u64>,
    /// Every request received, including refused ones.
    pub total: u64,
    /// Requests refused for missing, wrong or expired credentials.
    pub unauthorized: u64,
    /// Requests being answered right now.
    pub in_flight: u64,
    /// The most requests ever answered at the same time (what a concurrency bound caps).
    pub max_in_flight: u64,
}

/// The live request counters of a simulator, shared with its handlers (interior
/// mutability: every handler counts through a shared reference).
#[derive(Debug, Default)]
pub struct RequestCounters {
    // Behind a mutex, not atomics: operation names are only known at run time. A handler
    // holds it for one map update, so contention is negligible at test loads.
    requests: Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
    unauthorized: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl RequestCounters {
    /// A request arrived: counted, and in flight until the returned guard is dropped (also
    /// when the client hangs up and the handler is cancelled, which a "done" call would
    /// miss). Its operation is counted separately with [`RequestCounters::operation`],
    /// since a simulator may only learn it after reading the request.
    pub fn start(&self) -> InFlight<'_> {
        self.total.fetch_add(1, Ordering::Relaxed);
        // SeqCst on the in-flight pair: the maximum must never miss an overlap that
        // happened, or a test of a concurrency bound would pass for the wrong reason.
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { counters: self }
    }

    /// One request for `operation`.
    pub fn operation(&self, operation: &str) {
        let mut requests = self.lock_requests();
        // Not `entry(operation.to_owned())`: the key is allocated only the first time.
        match requests.get_mut(operation) {
            Some(count) => *count += 1,
            None => {
                requests.insert(operation.to_owned(), 1);
            }
        }
    }

    /// A request was refused for its credentials.
    pub fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> RequestStats {
        RequestStats {
            requests: self.lock_requests().clone(),
            total: self.total.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
        }
    }

    /// Back to zero, except the requests in flight: they are still running, and their
    /// guards will decrement the count when they end. The maximum restarts from them.
    pub fn reset(&self) {
        self.lock_requests().clear();
        self.total.store(0, Ordering::Relaxed);
        self.unauthorized.store(0, Ordering::Relaxed);
        let now = self.in_flight.load(Ordering::SeqCst);
        self.max_in_flight.store(now, Ordering::SeqCst);
    }

    /// The map, even if a handler panicked while holding it (every change is a single
    /// insert, increment or clear, so it stays consistent).
    fn lock_requests(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request in flight (from [`RequestCounters::start`]); dropping it ends it.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight as soon as this guard is dropped"]
pub struct InFlight<'a> {
    counters: &'a RequestCounters,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Which requests an injected fault applies to: optionally one operation, optionally one
/// subject (a student, a course…), a number of times or until cleared. The default
/// applies to every request, forever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultScope {
    /// Only for this operation; every operation when `None`.
    pub operation: Option<String>,
    /// Only for requests about this subject; every request when `None`. Requests without
    /// a subject never match a scope limited to one.
    pub subject: Option<String>,
    /// How many more requests it applies to; forever when `None`.
    pub remaining: Option<u64>,
}

impl FaultScope {
    /// Every request, until cleared (the same as [`FaultScope::default`]).
    pub fn everywhere() -> FaultScope {
        FaultScope::default()
    }

    /// Limited to one operation.
    pub fn on_operation(mut self, operation: impl Into<String>) -> FaultScope {
        self.operation = Some(operation.into());
        self
    }

    /// Limited to the requests about one subject.
    pub fn for_subject(mut self, subject: impl Into<String>) -> FaultScope {
        self.subject = Some(subject.into());
        self
    }

    /// Limited to the next `times` matching requests.
    pub fn times(mut self, times: u64) -> FaultScope {
        self.remaining = Some(times);
        self
    }

    /// Whether a request for `operation`, about `subject` if it has one, is in scope (and
    /// occurrences are left).
    pub fn matches(&self, operation: &str, subject: Option<&str>) -> bool {
        let operation_ok = self.operation.as_deref().is_none_or(|op| op == operation);
        let subject_ok = match &self.subject {
            None => true,
            Some(wanted) => subject == Some(wanted.as_str()),
        };
        operation_ok && subject_ok && self.remaining != Some(0)
    }

    /// Uses one occurrence; `false` when none is left afterwards (the fault can go).
    pub fn consume(&mut self) -> bool {
        match &mut self.remaining {
            None => true,
            Some(remaining) => {
                *remaining = remaining.saturating_sub(1);
                *remaining > 0
            }
        }
    }
}

/// One injected fault: what happens (`I`, the simulator's own injections) and on which
/// requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault<I> {
    /// What happens.
    pub injection: I,
    /// On which requests.
    pub scope: FaultScope,
}

impl<I> Fault<I> {
    /// `injection` on every request, until cleared.
    pub fn new(injection: I) -> Fault<I> {
        Fault {
            injection,
            scope: FaultScope::everywhere(),
        }
    }

    /// Limited to one operation (a SOAP operation, a route…).
    pub fn on_operation(mut self, operation: impl Into<String>) -> Fault<I> {
        self.scope = self.scope.on_operation(operation);
        self
    }

    /// Limited to the requests about one subject (a student…).
    pub fn for_subject(mut self, subject: impl Into<String>) -> Fault<I> {
        self.scope = self.scope.for_subject(subject);
        self
    }

    /// Limited to the next `times` matching requests.
    pub fn times(mut self, times: u64) -> Fault<I> {
        self.scope = self.scope.times(times);
        self
    }
}

/// The injections every simulator serves, so that the same constructors build them.
pub trait CommonInjection {
    /// Wait this long before answering.
    fn latency(delay: Duration) -> Self;
    /// HTTP 500, the kind of failure worth retrying.
    fn server_error() -> Self;
    /// The body cut in the middle, with a `Content-Length` matching what is sent.
    fn truncated_body() -> Self;
}

impl<I: CommonInjection> Fault<I> {
    /// A delay of `millis` milliseconds before each answer.
    pub fn latency(millis: u64) -> Fault<I> {
        Fault::new(I::latency(Duration::from_millis(millis)))
    }

    /// HTTP 500.
    pub fn server_error() -> Fault<I> {
        Fault::new(I::server_error())
    }

    /// A body cut in the middle.
    pub fn truncated_body() -> Fault<I> {
        Fault::new(I::truncated_body())
    }
}

impl<I> ScopedFault for Fault<I> {
    fn scope_mut(&mut self) -> &mut FaultScope {
        &mut self.scope
    }
}

/// A simulator's injected fault, as far as [`FaultControl`] needs to know it: its scope.
pub trait ScopedFault {
    /// Which requests it applies to, mutable so that occurrences can be used up.
    fn scope_mut(&mut self) -> &mut FaultScope;
}

/// The faults in force, shared with the running server (interior mutability: tests
/// change them between requests while the simulator runs). `F` is the simulator's own
/// fault type: what a fault does, and how faults combine on a response, is its business
/// (see [`FaultControl::apply`]).
#[derive(Debug)]
pub struct FaultControl<F> {
    faults: Mutex<Vec<F>>,
}

// Not derived: the derive would require `F: Default`, which a fault has no reason to be.
impl<F> Default for FaultControl<F> {
    fn default() -> Self {
        FaultControl {
            faults: Mutex::new(Vec::new()),
        }
    }
}

impl<F: ScopedFault> FaultControl<F> {
    /// Adds a fault; faults apply in the order they were injected.
    pub fn inject(&self, fault: F) {
        self.lock().push(fault);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The faults still in force (those limited to N requests disappear once used up).
    pub fn active(&self) -> Vec<F>
    where
        F: Clone,
    {
        self.lock().clone()
    }

    /// Offers each fault in scope of a request for `operation` (about `subject`, if it
    /// has one) to `take`, in injection order; `take` returns whether the fault takes part
    /// in the response (a second failure, say, may not). Those that take part use up one
    /// occurrence and disappear when none is left; the others stay for the next request.
    /// All under one lock, so concurrent requests never use the same last occurrence.
    pub fn apply(&self, operation: &str, subject: Option<&str>, mut take: impl FnMut(&F) -> bool) {
        self.lock().retain_mut(|fault| {
            if !fault.scope_mut().matches(operation, subject) {
                return true;
            }
            !take(fault) || fault.scope_mut().consume()
        });
    }

    /// The list, even if a thread panicked while holding it (it stays consistent: every
    /// change is a single push, clear or retain).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<F>> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A port opened on `127.0.0.1` and not served yet: a simulator whose answers name its
/// own address (a WSDL's `soap:address`, a base URL) learns it here before building its
/// router.
#[derive(Debug)]
pub struct SimulatorListener {
    listener: TcpListener,
    address: SocketAddr,
}

impl SimulatorListener {
    /// Opens a free port on `127.0.0.1`: only local clients reach a simulator, and tests
    /// running in parallel never compete for a fixed port.
    pub async fn bind() -> io::Result<SimulatorListener> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        Ok(SimulatorListener { listener, address })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `app` on the current Tokio runtime until [`SimulatorServer::shutdown`] or
    /// until the server is dropped; `name` (`Apogée`, `Pégase`…) labels its log lines.
    pub fn serve(self, app: Router, name: &'static str) -> SimulatorServer {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(self.listener, app).with_graceful_shutdown(async {
                // A dropped sender stops the server too: the `Err` is the signal.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "the {name} simulator stopped on an error");
            }
        });
        SimulatorServer {
            address: self.address,
            name,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A running simulator server. Dropping it stops it without waiting (a test that fails
/// half-way must not leave it running); [`SimulatorServer::shutdown`] waits.
#[derive(Debug)]
pub struct SimulatorServer {
    address: SocketAddr,
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimulatorServer {
    /// Serves `app` on a free port of `127.0.0.1` (see [`SimulatorListener`] for a
    /// router that must know its address); it accepts connections once this returns.
    /// `name` labels its log lines.
    pub async fn start(app: Router, name: &'static str) -> io::Result<SimulatorServer> {
        Ok(SimulatorListener::bind().await?.serve(app, name))
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting connections, lets the requests in progress finish, and returns
    /// when the server has stopped.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            // A panicked or cancelled task is not the caller's problem at shutdown: said,
            // not propagated.
            if let Err(error) = task.await {
                tracing::warn!(%error, "the {} simulator task ended abnormally", self.name);
            }
        }
    }

    /// Sends the stop signal, once.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The task may be gone already (it ended on an error): nothing to stop then.
            let _ = stop.send(());
        }
    }
}

impl Drop for SimulatorServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Duration;

    #[test]
    fn in_flight_and_maximum_follow_the_guards() {
        let counters = RequestCounters::default();
        let a = counters.start();
        let b = counters.start();
        counters.operation("recupererSE_v4");
        counters.operation("recupererSE_v4");
        drop(a);
        let stats = counters.snapshot();
        assert_eq!(
            (stats.in_flight, stats.max_in_flight, stats.total),
            (1, 2, 2)
        );
        assert_eq!(stats.requests["recupererSE_v4"], 2);
        counters.reset();
        assert_eq!(counters.snapshot().max_in_flight, 1);
        drop(b);
        assert_eq!(counters.snapshot().in_flight, 0);
    }

    #[test]
    fn reset_clears_requests_and_refusals() {
        let counters = RequestCounters::default();
        drop(counters.start());
        counters.operation("/r");
        counters.unauthorized();
        assert_eq!(counters.snapshot().unauthorized, 1);
        counters.reset();
        assert_eq!(counters.snapshot(), RequestStats::default());
    }

    #[test]
    fn a_scope_is_limited_by_operation_subject_and_count() {
        let mut scope = FaultScope::everywhere()
            .on_operation("recupererIAEtapes_v3")
            .for_subject("21900001")
            .times(2);
        assert!(!scope.matches("recupererIAEtapes_v3", Some("21900002")));
        assert!(!scope.matches("recupererIAEtapes_v3", None));
        assert!(!scope.matches("recupererSE_v4", Some("21900001")));
        assert!(scope.matches("recupererIAEtapes_v3", Some("21900001")));
        assert!(scope.consume(), "one occurrence left");
        assert!(!scope.consume(), "none left");
        assert!(!scope.matches("recupererIAEtapes_v3", Some("21900001")));
    }

    #[test]
    fn an_unlimited_scope_matches_everything_forever() {
        let mut scope = FaultScope::default();
        for _ in 0..3 {
            assert!(scope.matches("any", None) && scope.matches("other", Some("x")));
            assert!(scope.consume());
        }
    }

    /// A fault for the tests: a label and a scope.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Labelled(&'static str, FaultScope);

    impl ScopedFault for Labelled {
        fn scope_mut(&mut self) -> &mut FaultScope {
            &mut self.1
        }
    }

    /// The labels `apply` offers for a request, taking every one but `refused`.
    fn offered(
        control: &FaultControl<Labelled>,
        operation: &str,
        refused: &str,
    ) -> Vec<&'static str> {
        let mut offered = Vec::new();
        control.apply(operation, None, |fault| {
            offered.push(fault.0);
            fault.0 != refused
        });
        offered
    }

    #[test]
    fn faults_apply_in_order_and_only_those_taken_are_used_up() {
        let control = FaultControl::default();
        control.inject(Labelled("a", FaultScope::default().times(1)));
        control.inject(Labelled(
            "b",
            FaultScope::default().on_operation("op").times(1),
        ));
        control.inject(Labelled("c", FaultScope::default()));
        assert_eq!(offered(&control, "other", "none"), ["a", "c"]);
        // `a` is used up; `b` is offered but not taken, so it stays.
        assert_eq!(offered(&control, "op", "b"), ["b", "c"]);
        assert_eq!(offered(&control, "op", "none"), ["b", "c"]);
        assert_eq!(control.active(), [Labelled("c", FaultScope::default())]);
        control.clear();
        assert!(offered(&control, "op", "none").is_empty());
    }

    #[tokio::test]
    async fn the_server_serves_until_shut_down() {
        let listener = SimulatorListener::bind().await.unwrap();
        let address = listener.address();
        assert!(address.ip().is_loopback() && address.port() != 0);
        let app = Router::new().route("/", get(|| async { "up" }));
        let server = listener.serve(app, "test");
        assert_eq!(server.address(), address);
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("up"),
            "{answer}"
        );
        server.shutdown().await;
        assert!(tokio::net::TcpStream::connect(address).await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_server_stops_it() {
        let server = SimulatorServer::start(Router::new(), "test").await.unwrap();
        let address = server.address();
        drop(server);
        // The stop signal is asynchronous: the port closes shortly after.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(address).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{address} still accepts connections after the drop");
    }
}
