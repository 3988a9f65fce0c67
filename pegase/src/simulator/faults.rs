//! Fault injection: what a production Pégase (or the gateways in front of it) does to a
//! client on a bad night, switched on and off while the simulator runs.

use conpere_connectors::simulation::{self, CommonInjection, Fault};
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

/// One injected fault: what, and on which requests: a route (one of [`super::routes`],
/// the scope's operation), a number of times. Pégase faults are never limited to a
/// subject.
pub type InjectedFault = Fault<Injection>;

impl CommonInjection for Injection {
    fn latency(delay: Duration) -> Injection {
        Injection::Latency(delay)
    }

    fn server_error() -> Injection {
        Injection::ServerError
    }

    fn truncated_body() -> Injection {
        Injection::TruncatedBody
    }
}

/// The faults only Pégase's simulator injects.
pub trait BearerFaults {
    /// HTTP 401 as for an expired token.
    fn expired_token() -> Self;
    /// Limited to one route (one of [`super::routes`]).
    fn on_route(self, route: impl Into<String>) -> Self;
}

impl BearerFaults for InjectedFault {
    fn expired_token() -> InjectedFault {
        Fault::new(Injection::ExpiredToken)
    }

    fn on_route(self, route: impl Into<String>) -> InjectedFault {
        self.on_operation(route)
    }
}

/// The faults in force, shared with the running server: inject, clear and list them
/// while the simulator runs.
pub type FaultControl = simulation::FaultControl<InjectedFault>;

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

/// Decides what happens to a request on `route` and uses up one occurrence of each fault
/// that takes part: every matching latency, the first matching failure and the first
/// matching truncation. Requests carry no subject here: only the route and the count
/// decide.
pub(crate) fn decide(control: &FaultControl, route: &str) -> Plan {
    let mut plan = Plan::default();
    control.apply(route, None, |fault| match &fault.injection {
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
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_limited_by_route_and_count() {
        let control = FaultControl::default();
        control.inject(InjectedFault::server_error().on_route("/a").times(2));
        assert_eq!(decide(&control, "/b"), Plan::default());
        for _ in 0..2 {
            assert_eq!(decide(&control, "/a").failure, Some(Injection::ServerError));
        }
        assert!(control.active().is_empty());
        assert_eq!(decide(&control, "/a"), Plan::default());
    }

    #[test]
    fn latencies_add_up_and_the_first_failure_wins() {
        let control = FaultControl::default();
        control.inject(InjectedFault::latency(10));
        control.inject(InjectedFault::latency(5).times(1));
        control.inject(InjectedFault::expired_token().times(1));
        control.inject(InjectedFault::server_error().times(1));
        control.inject(InjectedFault::truncated_body());
        let plan = decide(&control, "/r");
        assert_eq!(plan.latency, Duration::from_millis(15));
        assert_eq!(plan.failure, Some(Injection::ExpiredToken));
        assert!(plan.truncate);
        // The server error was not used: it applies to the next request.
        let plan = decide(&control, "/r");
        assert_eq!(plan.latency, Duration::from_millis(10));
        assert_eq!(plan.failure, Some(Injection::ServerError));
    }
}
