//! Fault injection: what a production Apogée (or the proxies in front of it) does to
//! a client on a bad night, switched on and off while the simulator runs.

use conpere_connectors::simulation::{self, CommonInjection, Fault};
use std::time::Duration;

/// What to do to a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// Wait this long before answering (added up when several latency faults match).
    Latency(Duration),
    /// HTTP 500 with a SOAP fault `technical.remoteerror`: Apogée lost its database or a
    /// back-end, the kind of failure worth retrying.
    ServerError,
    /// HTTP 500 with a SOAP fault of this `faultstring` instead of the answer (e.g.
    /// `technical.parameter.noncoherentinput.codEtu` for one student).
    SoapFault(String),
    /// The body cut in the middle (at a character boundary), with a `Content-Length`
    /// matching what is sent: the connection is fine, the XML is not.
    TruncatedBody,
    /// The whole response encoded in ISO-8859-1 and labelled so (declaration and
    /// `charset`); characters outside Latin-1 (œ) become character references.
    Latin1,
}

/// One injected fault: what, and on which requests: an operation
/// (`recupererIAEtapes_v3`), a student (`_codEtu`, the scope's subject), a number of
/// times. Requests without a student (`recupererSE_v4`, `recupererListeEtudiants`) never
/// match a fault limited to a student.
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

/// The faults only Apogée's simulator injects.
pub trait SoapFaults {
    /// A SOAP fault with this `faultstring`.
    fn soap_fault(faultstring: impl Into<String>) -> Self;
    /// An ISO-8859-1 response.
    fn latin1() -> Self;
    /// Limited to the requests about one student (`_codEtu`).
    fn for_student(self, cod_etu: impl Into<String>) -> Self;
}

impl SoapFaults for InjectedFault {
    fn soap_fault(faultstring: impl Into<String>) -> InjectedFault {
        Fault::new(Injection::SoapFault(faultstring.into()))
    }

    fn latin1() -> InjectedFault {
        Fault::new(Injection::Latin1)
    }

    fn for_student(self, cod_etu: impl Into<String>) -> InjectedFault {
        self.for_subject(cod_etu)
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
    /// A failure replacing the answer.
    pub failure: Option<Failure>,
    /// Cut the body.
    pub truncate: bool,
    /// Encode in ISO-8859-1.
    pub latin1: bool,
}

/// An injected failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `technical.remoteerror`.
    ServerError,
    /// A SOAP fault with this faultstring.
    SoapFault(String),
}

/// Decides what happens to a request and uses up one occurrence of each fault that takes
/// part: every matching latency, the first matching failure, the first matching
/// truncation and the first matching Latin-1 encoding.
pub(crate) fn decide(control: &FaultControl, operation: &str, student: Option<&str>) -> Plan {
    let mut plan = Plan::default();
    control.apply(operation, student, |fault| match &fault.injection {
        Injection::Latency(delay) => {
            plan.latency += *delay;
            true
        }
        Injection::ServerError => set_once(&mut plan.failure, Failure::ServerError),
        Injection::SoapFault(string) => {
            set_once(&mut plan.failure, Failure::SoapFault(string.clone()))
        }
        Injection::TruncatedBody => !std::mem::replace(&mut plan.truncate, true),
        Injection::Latin1 => !std::mem::replace(&mut plan.latin1, true),
    });
    plan
}

/// Sets `slot` unless a failure is already planned; whether it was set.
fn set_once(slot: &mut Option<Failure>, failure: Failure) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(failure);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_limited_by_operation_student_and_count() {
        let control = FaultControl::default();
        control.inject(
            InjectedFault::server_error()
                .on_operation("recupererIAEtapes_v3")
                .for_student("21900001")
                .times(2),
        );
        assert_eq!(
            decide(&control, "recupererIAEtapes_v3", Some("21900002")),
            Plan::default()
        );
        assert_eq!(decide(&control, "recupererSE_v4", None), Plan::default());
        for _ in 0..2 {
            let plan = decide(&control, "recupererIAEtapes_v3", Some("21900001"));
            assert_eq!(plan.failure, Some(Failure::ServerError));
        }
        assert!(control.active().is_empty());
        assert_eq!(
            decide(&control, "recupererIAEtapes_v3", Some("21900001")),
            Plan::default()
        );
    }

    #[test]
    fn latencies_add_up_and_the_first_failure_wins() {
        let control = FaultControl::default();
        control.inject(InjectedFault::latency(10));
        control.inject(InjectedFault::latency(5).times(1));
        control.inject(InjectedFault::soap_fault("technical.x").times(1));
        control.inject(InjectedFault::server_error().times(1));
        control.inject(InjectedFault::latin1());
        let plan = decide(&control, "op", None);
        assert_eq!(plan.latency, Duration::from_millis(15));
        assert_eq!(plan.failure, Some(Failure::SoapFault("technical.x".into())));
        assert!(plan.latin1 && !plan.truncate);
        // The server error was not used: it applies to the next request.
        let plan = decide(&control, "op", None);
        assert_eq!(plan.latency, Duration::from_millis(10));
        assert_eq!(plan.failure, Some(Failure::ServerError));
        control.clear();
        assert_eq!(decide(&control, "op", None), Plan::default());
    }
}
