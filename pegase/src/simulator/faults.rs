//! Fault injection: what a production Pégase (or the gateways in front of it) does to a
//! client on a bad night, switched on and off while the simulator runs.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What to do to a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// Wait this long before answering (added up when several latency faults match).
    Latency(Duration),
    /// HTTP 500 with a plain-text (non-JSON) body and a `correlationId` header: what the
    /// older Pégase modules answer when a back-end fails, the kind of failure worth
    /// retrying.
    ServerError,
    /// HTTP 401 as if the bearer token had expired or been revoked server-side, whatever
    /// the token sent: the client must renew it and retry.
    ExpiredToken,
    /// The JSON body cut in the middle, with a `Content-Length` matching what is sent: the
    /// connection is fine, the JSON is not.
    TruncatedBody,
}

/// One injected fault: what, and on which requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    /// What happens.
    pub injection: Injection,
    /// Only for this route (one of [`super::routes`]); every route when `None`.
    pub route: Option<String>,
    /// How many more requests it applies to; forever when `None`.
    pub remaining: Option<u64>,
}

impl InjectedFault {
    /// `injection` on every request, until cleared.
    pub fn new(injection: Injection) -> InjectedFault {
        InjectedFault {
            injection,
            route: None,
            remaining: None,
        }
    }

    /// A delay of `millis` milliseconds before each answer.
    pub fn latency(millis: u64) -> InjectedFault {
        InjectedFault::new(Injection::Latency(Duration::from_millis(millis)))
    }

    /// HTTP 500 with a non-JSON body.
    pub fn server_error() -> InjectedFault {
        InjectedFault::new(Injection::ServerError)
    }

    /// HTTP 401 as for an expired token.
    pub fn expired_token() -> InjectedFault {
        InjectedFault::new(Injection::ExpiredToken)
    }

    /// A body cut in the middle.
    pub fn truncated_body() -> InjectedFault {
        InjectedFault::new(Injection::TruncatedBody)
    }

    /// Limited to one route (one of [`super::routes`]).
    pub fn on_route(mut self, route: impl Into<String>) -> InjectedFault {
        self.route = Some(route.into());
        self
    }

    /// Limited to the next `times` matching requests.
    pub fn times(mut self, times: u64) -> InjectedFault {
        self.remaining = Some(times);
        self
    }

    fn matches(&self, route: &str) -> bool {
        self.route.as_deref().is_none_or(|r| r == route) && self.remaining != Some(0)
    }

    /// Uses one occurrence; `false` when none is left afterwards.
    fn consume(&mut self) -> bool {
        match &mut self.remaining {
            None => true,
            Some(remaining) => {
                *remaining = remaining.saturating_sub(1);
                *remaining > 0
            }
        }
    }
}

/// The faults in force, shared with the running server (interior mutability: tests
/// change them between requests while the simulator runs).
#[derive(Debug, Default)]
pub struct FaultControl {
    faults: Mutex<Vec<InjectedFault>>,
}

/// What the server does to one response, decided when the request arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Total delay.
    pub latency: Duration,
    /// A failure replacing the answer ([`Injection::ServerError`] or
    /// [`Injection::ExpiredToken`]).
    pub failure: Option<Injection>,
    /// Cut the body.
    pub truncate: bool,
}

impl FaultControl {
    /// Adds a fault; faults apply in the order they were injected.
    pub fn inject(&self, fault: InjectedFault) {
        self.lock().push(fault);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The faults still in force (those limited to N requests disappear once used up).
    pub fn active(&self) -> Vec<InjectedFault> {
        self.lock().clone()
    }

    /// Decides what happens to a request on `route` and uses up one occurrence of each
    /// fault that takes part: every matching latency, the first matching failure and the
    /// first matching truncation.
    pub(crate) fn plan(&self, route: &str) -> Plan {
        let mut faults = self.lock();
        let mut plan = Plan::default();
        faults.retain_mut(|fault| {
            if !fault.matches(route) {
                return true;
            }
            let used = match &fault.injection {
                Injection::Latency(delay) => {
                    plan.latency += *delay;
                    true
                }
                Injection::ServerError | Injection::ExpiredToken => {
                    plan.failure.is_none() && {
                        plan.failure = Some(fault.injection.clone());
                        true
                    }
                }
                Injection::TruncatedBody => !std::mem::replace(&mut plan.truncate, true),
            };
            !used || fault.consume()
        });
        plan
    }

    /// The list, even if a thread panicked while holding it (it stays consistent: every
    /// change is a single push, clear or retain).
    fn lock(&self) -> MutexGuard<'_, Vec<InjectedFault>> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_limited_by_route_and_count() {
        let control = FaultControl::default();
        control.inject(InjectedFault::server_error().on_route("/a").times(2));
        assert_eq!(control.plan("/b"), Plan::default());
        for _ in 0..2 {
            assert_eq!(control.plan("/a").failure, Some(Injection::ServerError));
        }
        assert!(control.active().is_empty());
        assert_eq!(control.plan("/a"), Plan::default());
    }

    #[test]
    fn latencies_add_up_and_the_first_failure_wins() {
        let control = FaultControl::default();
        control.inject(InjectedFault::latency(10));
        control.inject(InjectedFault::latency(5).times(1));
        control.inject(InjectedFault::expired_token().times(1));
        control.inject(InjectedFault::server_error().times(1));
        control.inject(InjectedFault::truncated_body());
        let plan = control.plan("/r");
        assert_eq!(plan.latency, Duration::from_millis(15));
        assert_eq!(plan.failure, Some(Injection::ExpiredToken));
        assert!(plan.truncate);
        // The server error was not used: it applies to the next request.
        let plan = control.plan("/r");
        assert_eq!(plan.latency, Duration::from_millis(10));
        assert_eq!(plan.failure, Some(Injection::ServerError));
    }
}
