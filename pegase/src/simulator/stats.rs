//! Request counting: what the adapter called, how often, how many calls overlapped and
//! how many tokens it asked for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    /// Requests per route (its template, one of [`super::routes`]), served or refused;
    /// requests matching no route are not counted here.
    pub requests: BTreeMap<String, u64>,
    /// Every request on a known route.
    pub total: u64,
    /// Requests refused for their token (401 or 403), injected refusals included.
    pub unauthorized: u64,
    /// Tokens issued by `POST /cas/v1/tickets`.
    pub tokens_issued: u64,
    /// Requests being answered right now.
    pub in_flight: u64,
    /// The most requests ever answered at the same time (what a concurrency bound caps).
    pub max_in_flight: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
    unauthorized: AtomicU64,
    tokens_issued: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    /// A request on `route` arrived: counted, and in flight until the returned guard is
    /// dropped (also when the client hangs up and the handler is cancelled).
    pub(crate) fn start(&self, route: &str) -> InFlight<'_> {
        self.total.fetch_add(1, Ordering::Relaxed);
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_default() += 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { counters: self }
    }

    /// A request was refused for its token.
    pub(crate) fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    /// A token was issued.
    pub(crate) fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> SimulatorStats {
        SimulatorStats {
            requests: self
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            total: self.total.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            tokens_issued: self.tokens_issued.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
        }
    }

    /// Back to zero, except the requests in flight (they are still running); the maximum
    /// restarts from them.
    pub(crate) fn reset(&self) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.total.store(0, Ordering::Relaxed);
        self.unauthorized.store(0, Ordering::Relaxed);
        self.tokens_issued.store(0, Ordering::Relaxed);
        let now = self.in_flight.load(Ordering::SeqCst);
        self.max_in_flight.store(now, Ordering::SeqCst);
    }
}

/// A request in flight; dropping it ends it.
pub(crate) struct InFlight<'a> {
    counters: &'a Counters,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_and_maximum_follow_the_guards() {
        let counters = Counters::default();
        let a = counters.start("/r");
        let b = counters.start("/r");
        drop(a);
        let stats = counters.snapshot();
        assert_eq!(
            (stats.in_flight, stats.max_in_flight, stats.total),
            (1, 2, 2)
        );
        assert_eq!(stats.requests["/r"], 2);
        counters.reset();
        assert_eq!(counters.snapshot().max_in_flight, 1);
        drop(b);
        assert_eq!(counters.snapshot().in_flight, 0);
    }
}
