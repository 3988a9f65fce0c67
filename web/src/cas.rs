//! CAS 3.0 (the protocol of the ESUP universities' single sign-on), small and on
//! quick-xml: no maintained crate speaks it well.
//!
//! * login: the browser goes to `cas_url/login?service=S`, where `S` is conpere's
//!   `public_url` + `/auth/cas`; the CAS server sends it back to `S?ticket=ST-…`;
//! * validation: conpere asks `cas_url/p3/serviceValidate?service=S&ticket=ST-…` and reads
//!   the user and the attributes (`mail`, the configured INE attribute) from
//!   `<cas:authenticationSuccess>`, or the failure's code from
//!   `<cas:authenticationFailure>`. A ticket is good once (the CAS server says so);
//!   conpere never stores nor logs it — the session keeps its SHA-256 for single logout;
//! * single logout: the CAS server POSTs `logoutRequest`, a SAML `LogoutRequest` whose
//!   `SessionIndex` is the ticket of the session to end.

use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::BTreeMap;

/// A CAS server, and the service URL conpere is known to it by.
#[derive(Debug, Clone)]
pub struct Cas {
    /// The server's base URL (`https://cas.univ.fr/cas`), without a trailing slash.
    pub server: String,
    /// The service URL: `public_url` + `/auth/cas`.
    pub service: String,
    /// The attribute carrying the INE (`supannCodeINE` in the SUPANN schema), if any.
    pub ine_attribute: Option<String>,
    http: reqwest::Client,
}

/// A validated ticket: who, and what the server said of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// `cas:user`.
    pub user: String,
    /// `cas:attributes`, by local name (the first value of each).
    pub attributes: BTreeMap<String, String>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CasError {
    /// The server refused the ticket (its code: `INVALID_TICKET`, `INVALID_SERVICE`…).
    #[error("the CAS server refused the ticket ({0})")]
    Refused(String),
    /// The server could not be asked, or answered what is not CAS 3.0.
    #[error("the CAS server cannot validate tickets now: {0}")]
    Unavailable(String),
}

impl Cas {
    /// The CAS server at `server`, for the conpere whose public URL is `public_url`.
    pub fn new(server: &str, public_url: &str, ine_attribute: Option<String>) -> Cas {
        let http = crate::auth::provider_http();
        Cas {
            server: server.trim_end_matches('/').to_owned(),
            service: format!("{}/auth/cas", public_url.trim_end_matches('/')),
            ine_attribute,
            http,
        }
    }

    /// Where to send the browser to log in.
    pub fn login_url(&self) -> String {
        format!("{}/login?service={}", self.server, encode(&self.service))
    }

    /// Where to send the browser once logged out of conpere (the CAS session ends too,
    /// and the server may offer the way back to `back`).
    pub fn logout_url(&self, back: &str) -> String {
        format!("{}/logout?service={}", self.server, encode(back))
    }

    /// Asks the server whether `ticket` is good for our service.
    pub async fn validate(&self, ticket: &str) -> Result<Validated, CasError> {
        let url = format!(
            "{}/p3/serviceValidate?service={}&ticket={}",
            self.server,
            encode(&self.service),
            encode(ticket)
        );
        let unavailable = |e: reqwest::Error| CasError::Unavailable(e.without_url().to_string());
        let response = self.http.get(url).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(CasError::Unavailable(format!(
                "HTTP {} from /p3/serviceValidate",
                response.status()
            )));
        }
        parse_validation(&response.text().await.map_err(unavailable)?)
    }
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Reads a `/p3/serviceValidate` answer.
pub fn parse_validation(xml: &str) -> Result<Validated, CasError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let (mut path, mut user, mut attributes) = (Vec::<String>::new(), None, BTreeMap::new());
    let mut failure: Option<String> = None;
    let not_cas =
        |e: &dyn std::fmt::Display| CasError::Unavailable(format!("not a CAS answer: {e}"));
    loop {
        match reader.read_event().map_err(|e| not_cas(&e))? {
            Event::Start(tag) => {
                let name = String::from_utf8_lossy(tag.local_name().as_ref()).into_owned();
                if name == "authenticationFailure" {
                    let code = (tag.attributes().flatten())
                        .find(|a| a.key.local_name().as_ref() == b"code")
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                    failure = Some(code.unwrap_or_else(|| "no code".into()));
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| not_cas(&e))?.into_owned();
                match path.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    [.., "authenticationSuccess", "user"] => user = Some(text),
                    [.., "authenticationSuccess", "attributes", name] => {
                        attributes.entry(name.to_owned()).or_insert(text);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match (failure, user) {
        // The failure's text may repeat the ticket: only its code is kept.
        (Some(code), _) => Err(CasError::Refused(code)),
        (None, Some(user)) if !user.trim().is_empty() => Ok(Validated {
            user: user.trim().to_owned(),
            attributes,
        }),
        _ => Err(CasError::Unavailable(
            "the answer has neither a user nor a failure".into(),
        )),
    }
}

/// The ticket (`SessionIndex`) of a single-logout `LogoutRequest`.
pub fn logout_ticket(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(tag) => inside = tag.local_name().as_ref() == b"SessionIndex",
            Event::Text(text) if inside => {
                let ticket = text.unescape().ok()?.trim().to_owned();
                return (!ticket.is_empty()).then_some(ticket);
            }
            Event::End(_) => inside = false,
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol's success answer (CAS 3.0 specification, section 2.5.7 and appendix
    /// A), with SUPANN attributes.
    const SUCCESS: &str = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>mdupont</cas:user>
    <cas:attributes>
      <cas:mail>marie.dupont@etu.univ.fr</cas:mail>
      <cas:supannCodeINE>0912345678A</cas:supannCodeINE>
      <cas:memberOf>etudiants</cas:memberOf>
      <cas:memberOf>l1-socio</cas:memberOf>
    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#;

    /// Its failure answer.
    const FAILURE: &str = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationFailure code="INVALID_TICKET">
    Ticket ST-1856339-aA5Yuvrxzpv8Tau1cYQ7 not recognized
  </cas:authenticationFailure>
</cas:serviceResponse>"#;

    /// A single-logout request (CAS 3.0 specification, section 2.3.3).
    const LOGOUT: &str = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-1-abc" Version="2.0" IssueInstant="2026-12-06T10:00:00Z">
  <saml:NameID>@NOT_USED@</saml:NameID>
  <samlp:SessionIndex>ST-1856339-aA5Yuvrxzpv8Tau1cYQ7</samlp:SessionIndex>
</samlp:LogoutRequest>"#;

    #[test]
    fn a_success_gives_the_user_and_the_first_value_of_each_attribute() {
        let validated = parse_validation(SUCCESS).unwrap();
        assert_eq!(validated.user, "mdupont");
        assert_eq!(validated.attributes["mail"], "marie.dupont@etu.univ.fr");
        assert_eq!(validated.attributes["supannCodeINE"], "0912345678A");
        assert_eq!(validated.attributes["memberOf"], "etudiants");
    }

    #[test]
    fn a_failure_gives_its_code_and_never_the_ticket() {
        let refused = parse_validation(FAILURE).unwrap_err();
        assert_eq!(refused, CasError::Refused("INVALID_TICKET".into()));
        assert!(!refused.to_string().contains("ST-"));
        assert!(matches!(
            parse_validation("<html>proxy error</html>"),
            Err(CasError::Unavailable(_))
        ));
    }

    #[test]
    fn a_logout_request_names_its_ticket() {
        assert_eq!(
            logout_ticket(LOGOUT).as_deref(),
            Some("ST-1856339-aA5Yuvrxzpv8Tau1cYQ7")
        );
        assert_eq!(logout_ticket("<samlp:LogoutRequest/>"), None);
    }

    #[test]
    fn urls_carry_the_service_encoded() {
        let cas = Cas::new("https://cas.univ.fr/cas/", "https://conpere.univ.fr", None);
        assert_eq!(
            cas.login_url(),
            "https://cas.univ.fr/cas/login?service=https%3A%2F%2Fconpere.univ.fr%2Fauth%2Fcas"
        );
    }
}
