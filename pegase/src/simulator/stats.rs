//! Request counting: the counters every simulator keeps (what the adapter called, how
//! often, how many calls overlapped) and how many tokens it asked for.

use conpere_connectors::simulation::{InFlight, RequestCounters, RequestStats};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the simulator's counters: the common ones, whose `requests` are per route
/// template (one of [`super::routes`]; requests matching no route are not counted),
/// `total` every request on a known route and `unauthorized` those refused for their
/// token (401 or 403, injected refusals included), plus the tokens issued.
///
/// It dereferences to the common counters, so that `stats.requests`, `stats.total`…
/// read as they did when they were fields of this struct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    /// The counters every simulator keeps.
    pub common: RequestStats,
    /// Tokens issued by `POST /cas/v1/tickets`.
    pub tokens_issued: u64,
}

impl Deref for SimulatorStats {
    type Target = RequestStats;

    fn deref(&self) -> &RequestStats {
        &self.common
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    common: RequestCounters,
    tokens_issued: AtomicU64,
}

impl Counters {
    /// A request on `route` arrived: counted, and in flight until the returned guard is
    /// dropped.
    pub(crate) fn start(&self, route: &str) -> InFlight<'_> {
        let in_flight = self.common.start();
        // The route is known before the request is read (axum matched it), unlike a SOAP
        // operation: counted at once.
        self.common.operation(route);
        in_flight
    }

    /// A request was refused for its token.
    pub(crate) fn unauthorized(&self) {
        self.common.unauthorized();
    }

    /// A token was issued.
    pub(crate) fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> SimulatorStats {
        SimulatorStats {
            common: self.common.snapshot(),
            tokens_issued: self.tokens_issued.load(Ordering::Relaxed),
        }
    }

    /// Back to zero, except the requests in flight (they are still running).
    pub(crate) fn reset(&self) {
        self.common.reset();
        self.tokens_issued.store(0, Ordering::Relaxed);
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

    #[test]
    fn tokens_are_counted_and_reset() {
        let counters = Counters::default();
        counters.token_issued();
        assert_eq!(counters.snapshot().tokens_issued, 1);
        counters.reset();
        assert_eq!(counters.snapshot(), SimulatorStats::default());
    }
}
