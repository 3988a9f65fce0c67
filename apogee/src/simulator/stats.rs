//! Request counting: what the adapter called, how often, and how many calls overlapped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    /// SOAP requests per operation name (the Body's wrapper element, served or refused);
    /// a body that is not a readable SOAP request counts under `(unreadable)`.
    pub requests: BTreeMap<String, u64>,
    /// Every POST received, including refused and unreadable ones.
    pub total: u64,
    /// POSTs refused for missing or wrong credentials (HTTP 401).
    pub unauthorized: u64,
    /// POSTs being answered right now.
    pub in_flight: u64,
    /// The most POSTs ever answered at the same time (what a concurrency bound caps).
    pub max_in_flight: u64,
}

/// The key of requests whose operation could not be read.
pub(crate) const UNREADABLE: &str = "(unreadable)";

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
    unauthorized: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    /// A POST arrived: counted, and in flight until the returned guard is dropped (also
    /// when the client hangs up and the handler is cancelled).
    pub(crate) fn start(&self) -> InFlight<'_> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { counters: self }
    }

    /// A POST was refused for its credentials.
    pub(crate) fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    /// A request for `operation`.
    pub(crate) fn operation(&self, operation: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        match requests.get_mut(operation) {
            Some(count) => *count += 1,
            None => {
                requests.insert(operation.to_owned(), 1);
            }
        }
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
}
