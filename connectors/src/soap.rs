//! SOAP 1.1 for document/literal wrapped services, as Apogée's web services speak it.
//!
//! * A request is an envelope whose Body holds one **wrapper** element named after the
//!   operation and qualified by the service namespace; its children (the parameters,
//!   `_codEtu`, `_annee`…) are **unqualified** (`elementFormDefault="unqualified"`).
//!   [`envelope`] builds it from [`Param`]s.
//! * A response Body holds the `<ns1:{operation}Response>` wrapper, read by
//!   [`parse_response`], or a `soapenv:Fault`, returned as [`SoapError::Fault`].
//! * **Apogée reports "no data" as a fault**: an unknown student, a year without
//!   registration or an empty course catalogue come back as a fault whose `faultstring`
//!   starts with `technical.data.nullretrieve` (`…etudiant`, `…findIAA`, `…codAnu`,
//!   `…recupererse`), and invalid input as `technical.parameter.…` (e.g.
//!   `technical.parameter.noncoherentinput.codEtu`). [`Fault::kind`] sorts them so a
//!   caller maps [`FaultKind::NoData`] to an empty result, [`FaultKind::BadInput`] to an
//!   error of the caller, and [`FaultKind::Other`] to a failure worth retrying.
//!
//! Simulators of SOAP services use the server side: [`parse_request`] to dispatch on
//! the operation, [`response_envelope`] and [`fault_envelope`] to answer.
//!
//! ```
//! use conpere_connectors::soap::{self, Param};
//!
//! let ns = "gouv.education.apogee.commun.servicesmetiers.EtudiantMetier";
//! let request = soap::envelope(ns, "recupererIdentifiantsEtudiant_v2", &[
//!     Param::text("_codEtu", "21901234"),
//!     Param::text("_temoinRecupAnnu", "O"),
//! ]);
//!
//! // The simulator's side.
//! let (operation, wrapper) = soap::parse_request(request.as_bytes(), None).unwrap();
//! assert_eq!(operation, "recupererIdentifiantsEtudiant_v2");
//! assert_eq!(wrapper.text_of("_codEtu"), Some("21901234"));
//! let answer = soap::response_envelope(ns, &operation, &soap::params_xml(&[
//!     Param::nested("recupererIdentifiantsEtudiant_v2Return", vec![
//!         Param::text("codEtu", "21901234"),
//!         Param::text("numeroINE", "0123456789A"),
//!     ]),
//! ]));
//!
//! // The client's side.
//! let response = soap::parse_response(answer.as_bytes(), Some(soap::CONTENT_TYPE),
//!     "recupererIdentifiantsEtudiant_v2").unwrap();
//! let record = response.records().next().unwrap();
//! assert_eq!(record.text_of("numeroINE"), Some("0123456789A"));
//! ```

use crate::xml::{self, Element, XmlError};
use std::borrow::Cow;
use std::fmt;

/// Namespace of SOAP 1.1 envelopes.
pub const ENVELOPE_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Namespace of `xsi:nil`.
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Content-Type of a SOAP 1.1 request built by [`envelope`] (always UTF-8).
pub const CONTENT_TYPE: &str = "text/xml; charset=UTF-8";

/// Value of the `SOAPAction` header for Apogée: every operation declares
/// `soapAction=""`, and SOAP 1.1 wants the quotes on the wire.
pub const SOAP_ACTION: &str = "\"\"";

/// Every document produced here is UTF-8 and says so.
const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// How much of the body is quoted when it is not SOAP (an HTML error page…).
const NOT_SOAP_QUOTE_CHARS: usize = 200;

/// How far into the body `Envelope` is looked for to tell a broken SOAP message from
/// something else.
const SOAP_SNIFF_BYTES: usize = 4096;

/// Longest fault detail kept when it is not Apogée's `WebBaseException` (an Axis
/// stack trace can be kilobytes long).
const MAX_FOREIGN_DETAIL_CHARS: usize = 500;

/// Element name: `'static` for the names written in adapter code, owned when computed.
pub type Name = Cow<'static, str>;

/// One parameter of a request (or one field of a simulated response): an unqualified
/// element.
///
/// Apogée parameters are all `xsd:string`, prefixed with `_`. Java clients pass `null`
/// for unused parameters, which JAXB sends by **omitting** the element: prefer leaving a
/// parameter out to [`Param::nil`], which only services that want the element present
/// need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// `<name>value</name>`, the value escaped.
    Text(Name, String),
    /// `<name>…children…</name>` (a DTO parameter such as `_seCritere`).
    Nested(Name, Vec<Param>),
    /// `<name xsi:nil="true"/>`.
    Nil(Name),
}

impl Param {
    /// A text parameter: `Param::text("_codEtu", "21901234")`.
    pub fn text(name: impl Into<Name>, value: impl Into<String>) -> Param {
        Param::Text(name.into(), value.into())
    }

    /// A structured parameter:
    /// `Param::nested("_seCritere", vec![Param::text("codEtp", "L2INF")])`.
    pub fn nested(name: impl Into<Name>, children: Vec<Param>) -> Param {
        Param::Nested(name.into(), children)
    }

    /// An explicitly nil parameter.
    pub fn nil(name: impl Into<Name>) -> Param {
        Param::Nil(name.into())
    }

    /// The element name.
    pub fn name(&self) -> &str {
        match self {
            Param::Text(name, _) | Param::Nested(name, _) | Param::Nil(name) => name,
        }
    }

    fn write(&self, out: &mut String) {
        let name = self.name();
        debug_assert!(is_simple_name(name), "`{name}` is not an XML element name");
        match self {
            Param::Text(_, value) => {
                push_tags(out, name, |out| out.push_str(&escape(value)));
            }
            Param::Nested(_, children) => {
                push_tags(out, name, |out| children.iter().for_each(|c| c.write(out)));
            }
            Param::Nil(_) => {
                out.push('<');
                out.push_str(name);
                out.push_str(r#" xsi:nil="true" xmlns:xsi=""#);
                out.push_str(XSI_NAMESPACE);
                out.push_str(r#""/>"#);
            }
        }
    }
}

/// `<name>` + content + `</name>`.
fn push_tags(out: &mut String, name: &str, content: impl FnOnce(&mut String)) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    content(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Element names are written by adapter code, never taken from input: a name that is
/// not one is a bug, caught by a debug assertion rather than an error to handle.
fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Renders parameters as unqualified elements, in order. Simulators use it to write
/// response bodies for [`response_envelope`]: response fields are unqualified too.
pub fn params_xml(params: &[Param]) -> String {
    let mut out = String::new();
    params.iter().for_each(|param| param.write(&mut out));
    out
}

/// Escapes text for element content or a double-quoted attribute value.
///
/// Beyond quick-xml's escaping of `< > & ' "`, a carriage return becomes `&#13;` (a
/// parser would otherwise turn it into a line feed) and the control characters XML 1.0
/// cannot carry at all become U+FFFD, with a warning.
pub fn escape(text: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::escape(text);
    if !escaped.contains(|c: char| c == '\r' || is_forbidden_in_xml(c)) {
        return escaped;
    }
    tracing::warn!("text sent in XML holds control characters XML 1.0 cannot carry; replaced");
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        match c {
            '\r' => out.push_str("&#13;"),
            c if is_forbidden_in_xml(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters outside XML 1.0's `Char` production (surrogates cannot be in a `str`).
fn is_forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// A SOAP 1.1 request envelope for a document/literal wrapped operation.
///
/// Only the wrapper `<ns:{operation}>` is qualified (by `namespace`); the parameters are
/// unqualified, as `elementFormDefault="unqualified"` wants. Values are escaped; names
/// are written as given.
///
/// ```
/// use conpere_connectors::soap::{envelope, Param};
///
/// let xml = envelope("urn:of", "recupererSE_v4", &[Param::nested("_seCritere", vec![
///     Param::text("codEtp", "L2INF"),
///     Param::text("codElp", "tous"),
/// ])]);
/// assert!(xml.contains(r#"xmlns:ns="urn:of"><soapenv:Header/><soapenv:Body><ns:recupererSE_v4>"#));
/// assert!(xml.contains("<_seCritere><codEtp>L2INF</codEtp><codElp>tous</codElp></_seCritere>"));
/// ```
pub fn envelope(namespace: &str, operation: &str, params: &[Param]) -> String {
    debug_assert!(
        is_simple_name(operation),
        "`{operation}` is not an XML element name"
    );
    format!(
        "{XML_DECLARATION}<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NAMESPACE}\" \
         xmlns:ns=\"{namespace}\"><soapenv:Header/><soapenv:Body><ns:{operation}>{params}\
         </ns:{operation}></soapenv:Body></soapenv:Envelope>",
        namespace = escape(namespace),
        params = params_xml(params),
    )
}

/// A successful response: the wrapper element of the Body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapResponse {
    /// `<ns1:{operation}Response>`, its prefix stripped like every name.
    pub wrapper: Element,
}

impl SoapResponse {
    /// The records of the response: every child of the wrapper. Apogée repeats one
    /// `…Return` element (or `etudiant`, or a bare year) per record at this level.
    pub fn records(&self) -> impl Iterator<Item = &Element> {
        self.wrapper.children.iter()
    }

    /// The wrapper element, owned.
    pub fn into_wrapper(self) -> Element {
        self.wrapper
    }
}

/// A SOAP 1.1 fault.
///
/// Apogée's fault detail is a `WebBaseException` (`detail/fault`: `domaine`, `element`,
/// `messages/item`, `nature`, `type`, `lastErrorMsg`). See [`Fault::kind`] for what the
/// `faultstring` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `faultcode`, as sent (`soapenv:Server`).
    pub code: String,
    /// `faultstring`: for Apogée a message key such as `technical.data.nullretrieve.etudiant`.
    pub string: String,
    /// The readable part of `detail`: `lastErrorMsg` and the `messages/item` texts,
    /// joined with `; `; for a detail of another shape, its texts (shortened).
    pub detail: Option<String>,
}

/// What a fault means to a caller (Apogée conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `technical.data.nullretrieve…`: Apogée's way of saying "nothing found". Not an
    /// error: the answer is empty.
    NoData,
    /// `technical.parameter.…`: the request itself is wrong (an unknown student number
    /// comes back as `technical.parameter.noncoherentinput.codEtu`). Retrying will not
    /// help.
    BadInput,
    /// Anything else: a real failure of the service, worth retrying.
    Other,
}

impl Fault {
    /// Sorts the fault by its `faultstring` prefix.
    ///
    /// Only the `faultstring` counts, never the detail: taking a real failure for "no
    /// data" would make a full read report students as gone. A message mentioning
    /// `remoteerror` is a real error whatever its prefix (esup-mdw's rule).
    ///
    /// ```
    /// use conpere_connectors::soap::{Fault, FaultKind};
    ///
    /// let fault = |s: &str| Fault { code: "soapenv:Server".into(), string: s.into(), detail: None };
    /// assert_eq!(fault("technical.data.nullretrieve.findIAA").kind(), FaultKind::NoData);
    /// assert_eq!(fault("technical.parameter.noncoherentinput.codEtu").kind(), FaultKind::BadInput);
    /// assert_eq!(fault("java.lang.NullPointerException").kind(), FaultKind::Other);
    /// ```
    pub fn kind(&self) -> FaultKind {
        let string = self.string.trim().to_ascii_lowercase();
        if string.contains("remoteerror") {
            FaultKind::Other
        } else if string.starts_with("technical.data.nullretrieve") {
            FaultKind::NoData
        } else if string.starts_with("technical.parameter.") {
            FaultKind::BadInput
        } else {
            FaultKind::Other
        }
    }

    /// Reads a `Fault` element.
    fn from_element(fault: &Element) -> Fault {
        Fault {
            code: fault.text_of("faultcode").unwrap_or_default().to_owned(),
            string: fault.text_of("faultstring").unwrap_or_default().to_owned(),
            detail: fault.child("detail").and_then(detail_text),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SOAP fault `{}` ({})", self.string, self.code)?;
        match &self.detail {
            Some(detail) if *detail != self.string => write!(f, ": {detail}"),
            _ => Ok(()),
        }
    }
}

/// The readable part of a fault's `detail`.
fn detail_text(detail: &Element) -> Option<String> {
    let apogee = detail
        .child("fault")
        .map(web_base_exception_messages)
        .filter(|messages| !messages.is_empty());
    let messages = apogee.unwrap_or_else(|| {
        let mut texts = Vec::new();
        collect_texts(detail, &mut texts);
        texts
    });
    let joined = messages.join("; ");
    let shortened: String = joined.chars().take(MAX_FOREIGN_DETAIL_CHARS).collect();
    Some(shortened).filter(|s| !s.is_empty())
}

/// `lastErrorMsg` then `messages/item`, without repeats.
fn web_base_exception_messages(exception: &Element) -> Vec<&str> {
    let items = exception
        .child("messages")
        .into_iter()
        .flat_map(|messages| messages.children_named("item"))
        .filter_map(Element::value);
    let mut messages: Vec<&str> = Vec::new();
    for message in exception.text_of("lastErrorMsg").into_iter().chain(items) {
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    messages
}

/// Every non-empty text under `element`, depth first (depth is bounded by the parser).
fn collect_texts<'e>(element: &'e Element, texts: &mut Vec<&'e str>) {
    texts.extend(element.value());
    for child in &element.children {
        collect_texts(child, texts);
    }
}

/// What can go wrong with a SOAP exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// The service answered with a fault; see [`Fault::kind`] (Apogée's "no data" is one).
    #[error("{0}")]
    Fault(Fault),
    /// The body looks like SOAP but is not readable XML (truncated, wrong encoding…).
    #[error("unreadable SOAP message: {0}")]
    Xml(#[from] XmlError),
    /// The body is not a SOAP envelope (an HTML error page from a proxy…); the message
    /// quotes its first 200 characters.
    #[error("not a SOAP message (no Envelope/Body): {0}")]
    NotSoap(String),
    /// The envelope's Body holds no element at all.
    #[error("the SOAP Body is empty: no operation element in it")]
    EmptyBody,
}

/// Reads a response to `operation`: its wrapper element, or the fault it carries.
///
/// The wrapper is looked for as `{operation}Response` (ASCII case-insensitive, prefix
/// ignored), or with a version suffix moved after `Response` as some Apogée operations
/// do (`recupererIAAnnuelles_v2` answers `recupererIAAnnuellesResponse_v2`); failing
/// both, the first element of the Body is taken (logged at debug level) so a renamed
/// wrapper does not break a reader that only looks at its content.
///
/// Pass the body of HTTP 500 answers too: SOAP 1.1 faults come with status 500.
///
/// ```
/// use conpere_connectors::soap::{self, FaultKind, SoapError};
///
/// let body = soap::fault_envelope("urn:etu", "technical.data.nullretrieve.etudiant",
///     "Aucun étudiant trouvé");
/// match soap::parse_response(body.as_bytes(), None, "recupererInfosAdmEtu_v4") {
///     Err(SoapError::Fault(fault)) => {
///         assert_eq!(fault.kind(), FaultKind::NoData);
///         assert_eq!(fault.detail.as_deref(), Some("Aucun étudiant trouvé"));
///     }
///     other => panic!("expected a fault, got {other:?}"),
/// }
/// ```
pub fn parse_response(
    bytes: &[u8],
    content_type: Option<&str>,
    operation: &str,
) -> Result<SoapResponse, SoapError> {
    let body = read_body(bytes, content_type)?;
    if let Some(fault) = body.child("Fault") {
        return Err(SoapError::Fault(Fault::from_element(fault)));
    }
    let wrapper = response_wrapper(body, operation)?;
    Ok(SoapResponse { wrapper })
}

/// Reads a request (for simulators): the operation's local name and its wrapper
/// element, whose children are the parameters.
///
/// ```
/// use conpere_connectors::soap::{envelope, parse_request, Param};
///
/// let request = envelope("urn:adm", "recupererIAEtapes_v3", &[Param::text("_annee", "2024")]);
/// let (operation, wrapper) = parse_request(request.as_bytes(), None).unwrap();
/// assert_eq!((operation.as_str(), wrapper.text_of("_annee")), ("recupererIAEtapes_v3", Some("2024")));
/// ```
pub fn parse_request(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(String, Element), SoapError> {
    let body = read_body(bytes, content_type)?;
    let wrapper = body
        .children
        .into_iter()
        .next()
        .ok_or(SoapError::EmptyBody)?;
    Ok((wrapper.name.clone(), wrapper))
}

/// A response envelope (for simulators): `body_xml` inside
/// `<ns1:{operation}Response xmlns:ns1="{namespace}">`. `body_xml` is inserted as is:
/// build it with [`params_xml`] or escape its texts with [`escape`].
pub fn response_envelope(namespace: &str, operation: &str, body_xml: &str) -> String {
    response_envelope_with_wrapper(namespace, &format!("{operation}Response"), body_xml)
}

/// Like [`response_envelope`], with the wrapper's local name given in full, for the
/// operations whose WSDL does not follow `{operation}Response`
/// (`recupererIAAnnuellesResponse_v2`).
pub fn response_envelope_with_wrapper(namespace: &str, wrapper: &str, body_xml: &str) -> String {
    debug_assert!(
        is_simple_name(wrapper),
        "`{wrapper}` is not an XML element name"
    );
    soap_document(&format!(
        "<ns1:{wrapper} xmlns:ns1=\"{namespace}\">{body_xml}</ns1:{wrapper}>",
        namespace = escape(namespace),
    ))
}

/// A fault envelope (for simulators) in the shape Apogée's WSDL declares: `faultcode`
/// `soapenv:Server`, `faultstring`, and a `detail/ns1:fault` `WebBaseException` whose
/// `messages/item` and `lastErrorMsg` carry `detail_message` (its other fields nil).
///
/// ```
/// let xml = conpere_connectors::soap::fault_envelope(
///     "urn:etu", "technical.parameter.noncoherentinput.codEtu", "codEtu inconnu");
/// assert!(xml.contains("<faultstring>technical.parameter.noncoherentinput.codEtu</faultstring>"));
/// assert!(xml.contains("<lastErrorMsg>codEtu inconnu</lastErrorMsg>"));
/// ```
pub fn fault_envelope(namespace: &str, faultstring: &str, detail_message: &str) -> String {
    let message = escape(detail_message);
    soap_document(&format!(
        "<soapenv:Fault><faultcode>soapenv:Server</faultcode>\
         <faultstring>{faultstring}</faultstring><detail>\
         <ns1:fault xmlns:ns1=\"{namespace}\" xmlns:xsi=\"{XSI_NAMESPACE}\">\
         <domaine xsi:nil=\"true\"/><element xsi:nil=\"true\"/>\
         <messages><item>{message}</item></messages>\
         <nature xsi:nil=\"true\"/><type xsi:nil=\"true\"/>\
         <lastErrorMsg>{message}</lastErrorMsg></ns1:fault></detail></soapenv:Fault>",
        faultstring = escape(faultstring),
        namespace = escape(namespace),
    ))
}

/// An envelope without header around `body_content`.
fn soap_document(body_content: &str) -> String {
    format!(
        "{XML_DECLARATION}<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NAMESPACE}\">\
         <soapenv:Body>{body_content}</soapenv:Body></soapenv:Envelope>"
    )
}

/// Parses the document and returns its `Envelope/Body`.
fn read_body(bytes: &[u8], content_type: Option<&str>) -> Result<Element, SoapError> {
    let root = match xml::parse(bytes, content_type) {
        Ok(root) => root,
        // A cut or mis-encoded envelope is a broken SOAP message, worth its XML error;
        // an HTML page (often not even well-formed) is something else entirely.
        Err(error) if mentions_envelope(bytes) => return Err(SoapError::Xml(error)),
        Err(_) => return Err(not_soap(bytes, content_type)),
    };
    if !root.name.eq_ignore_ascii_case("Envelope") {
        return Err(not_soap(bytes, content_type));
    }
    root.children
        .into_iter()
        .find(|child| child.name.eq_ignore_ascii_case("Body"))
        .ok_or_else(|| not_soap(bytes, content_type))
}

/// Whether the start of the body names an `Envelope` element.
fn mentions_envelope(bytes: &[u8]) -> bool {
    let head = bytes.get(..SOAP_SNIFF_BYTES).unwrap_or(bytes);
    head.windows(b"Envelope".len()).any(|w| w == b"Envelope")
}

/// [`SoapError::NotSoap`] quoting the start of the body, whitespace collapsed so the
/// message stays on one line.
fn not_soap(bytes: &[u8], content_type: Option<&str>) -> SoapError {
    let head = bytes.get(..NOT_SOAP_QUOTE_CHARS * 4).unwrap_or(bytes);
    let text = String::from_utf8_lossy(head);
    let quote: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(NOT_SOAP_QUOTE_CHARS)
        .collect();
    let content_type = content_type.unwrap_or("no Content-Type");
    SoapError::NotSoap(format!("got ({content_type}) `{quote}`"))
}

/// Takes the response wrapper out of the Body (see [`parse_response`]).
fn response_wrapper(body: Element, operation: &str) -> Result<Element, SoapError> {
    let expected = response_names(operation);
    let mut children = body.children;
    let position = children.iter().position(|c| {
        expected
            .iter()
            .any(|name| c.name.eq_ignore_ascii_case(name))
    });
    if let Some(position) = position {
        return Ok(children.swap_remove(position));
    }
    let first = children.into_iter().next().ok_or(SoapError::EmptyBody)?;
    tracing::debug!(
        operation,
        found = %first.name,
        "SOAP response wrapper not named after the operation; using the first element of the Body"
    );
    Ok(first)
}

/// `{operation}Response`, and for `name_vN` also `nameResponse_vN`.
fn response_names(operation: &str) -> Vec<String> {
    let mut names = vec![format!("{operation}Response")];
    if let Some((base, version)) = operation.rsplit_once('_') {
        let is_version = version.len() > 1
            && version.starts_with(['v', 'V'])
            && version[1..].bytes().all(|b| b.is_ascii_digit());
        if is_version {
            names.push(format!("{base}Response_{version}"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "gouv.education.apogee.commun.servicesmetiers.EtudiantMetier";

    #[test]
    fn envelope_has_the_exact_shape() {
        let xml = envelope(
            NS,
            "recupererAnneesIa",
            &[Param::text("_codEtu", "21901234")],
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope \
             xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:ns=\"gouv.education.apogee.commun.servicesmetiers.EtudiantMetier\">\
             <soapenv:Header/><soapenv:Body><ns:recupererAnneesIa><_codEtu>21901234</_codEtu>\
             </ns:recupererAnneesIa></soapenv:Body></soapenv:Envelope>"
        );
    }

    #[test]
    fn envelope_round_trip() {
        let params = [
            Param::text("_codEtu", "21901234"),
            Param::text("_nom", "O'Brien & Fils <SARL> \"Œuvre\" çà"),
            Param::text(String::from("_multi"), "a\r\nb\tc"),
            Param::nested(
                "_seCritere",
                vec![
                    Param::text("codEtp", "L2INF"),
                    Param::nested("listVersion", vec![Param::text("item", "120")]),
                ],
            ),
            Param::nil("_codOPI"),
        ];
        let request = envelope(NS, "recupererListeEtudiants", &params);
        let (operation, wrapper) = parse_request(request.as_bytes(), Some(CONTENT_TYPE)).unwrap();
        assert_eq!(operation, "recupererListeEtudiants");
        let names: Vec<&str> = wrapper.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["_codEtu", "_nom", "_multi", "_seCritere", "_codOPI"]
        );
        assert_eq!(wrapper.text_of("_codEtu"), Some("21901234"));
        assert_eq!(
            wrapper.text_of("_nom"),
            Some("O'Brien & Fils <SARL> \"Œuvre\" çà")
        );
        assert_eq!(wrapper.child("_multi").unwrap().text, "a\r\nb\tc");
        assert_eq!(
            wrapper
                .path(&["_seCritere", "listVersion", "item"])
                .unwrap()
                .text,
            "120"
        );
        assert!(wrapper.child("_codOPI").unwrap().is_nil());
    }

    #[test]
    fn escape_handles_markup_and_controls() {
        assert_eq!(escape("plain é"), "plain é");
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert_eq!(escape("x\ry"), "x&#13;y");
        assert_eq!(escape("x\u{1}y"), "x\u{FFFD}y");
    }

    #[test]
    fn response_round_trip_with_a_latin1_body() {
        let xml = response_envelope(
            NS,
            "recupererInfosAdmEtu_v4",
            &params_xml(&[Param::nested(
                "recupererInfosAdmEtu_v4Return",
                vec![
                    Param::text("nomUsuel", "GARÇON"),
                    Param::text("prenom1", "Zoé"),
                ],
            )]),
        );
        // The same document re-encoded in ISO-8859-1, labelled by the header only.
        let latin1: Vec<u8> = xml
            .replace("encoding=\"UTF-8\"", "")
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect();
        let response = parse_response(
            &latin1,
            Some("text/xml;charset=ISO-8859-1"),
            "recupererInfosAdmEtu_v4",
        )
        .unwrap();
        assert_eq!(response.wrapper.name, "recupererInfosAdmEtu_v4Response");
        let record = response.records().next().unwrap();
        assert_eq!(record.text_of("nomUsuel"), Some("GARÇON"));
        assert_eq!(record.text_of("prenom1"), Some("Zoé"));
    }

    #[test]
    fn wrapper_name_is_matched_case_insensitively_and_with_version_suffix() {
        let xml = response_envelope_with_wrapper(NS, "RecupererAnneesIAResponse", "<x>2024</x>");
        let response = parse_response(xml.as_bytes(), None, "recupererAnneesIa").unwrap();
        assert_eq!(response.wrapper.text_of("x"), Some("2024"));

        let xml = response_envelope_with_wrapper(NS, "recupererIAAnnuellesResponse_v2", "");
        let response = parse_response(xml.as_bytes(), None, "recupererIAAnnuelles_v2").unwrap();
        assert_eq!(response.wrapper.name, "recupererIAAnnuellesResponse_v2");
    }

    #[test]
    fn unexpected_wrapper_name_falls_back_to_the_first_element() {
        let xml = response_envelope_with_wrapper(NS, "somethingElse", "<y/>");
        let response = parse_response(xml.as_bytes(), None, "recupererAnneesIa").unwrap();
        assert_eq!(response.wrapper.name, "somethingElse");
    }

    #[test]
    fn empty_body_is_an_error() {
        let xml = soap_document("");
        assert_eq!(
            parse_response(xml.as_bytes(), None, "op"),
            Err(SoapError::EmptyBody)
        );
        assert_eq!(
            parse_request(xml.as_bytes(), None),
            Err(SoapError::EmptyBody)
        );
    }

    fn fault_of(xml: &str) -> Fault {
        match parse_response(xml.as_bytes(), None, "recupererIAEtapes_v3") {
            Err(SoapError::Fault(fault)) => fault,
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn fault_envelope_round_trip() {
        let fault = fault_of(&fault_envelope(
            NS,
            "technical.data.nullretrieve.findIAA",
            "Aucune inscription <annuelle> trouvée",
        ));
        assert_eq!(fault.code, "soapenv:Server");
        assert_eq!(fault.string, "technical.data.nullretrieve.findIAA");
        assert_eq!(
            fault.detail.as_deref(),
            Some("Aucune inscription <annuelle> trouvée")
        );
        assert_eq!(fault.kind(), FaultKind::NoData);
    }

    #[test]
    fn fault_kinds() {
        let kind = |string: &str| fault_of(&fault_envelope(NS, string, "m")).kind();
        assert_eq!(
            kind("technical.data.nullretrieve.etudiant"),
            FaultKind::NoData
        );
        assert_eq!(
            kind("technical.data.nullretrieve.recupererse"),
            FaultKind::NoData
        );
        assert_eq!(
            kind("technical.parameter.noncoherentinput.codEtu"),
            FaultKind::BadInput
        );
        assert_eq!(
            kind("technical.data.nullretrieve.remoteerror"),
            FaultKind::Other
        );
        assert_eq!(
            kind("ORA-01017: invalid username/password"),
            FaultKind::Other
        );
        assert_eq!(kind(""), FaultKind::Other);
    }

    #[test]
    fn fault_detail_joins_messages_and_tolerates_other_shapes() {
        let xml = soap_document(
            "<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>x</faultstring>\
             <detail><ns1:fault xmlns:ns1=\"urn:a\"><messages><item>un</item><item>deux</item>\
             </messages></ns1:fault></detail></soapenv:Fault>",
        );
        assert_eq!(fault_of(&xml).detail.as_deref(), Some("un; deux"));

        let xml = soap_document(
            "<soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>boom</faultstring>\
             <detail><hostname>apo-ws-1</hostname></detail></soapenv:Fault>",
        );
        let fault = fault_of(&xml);
        assert_eq!(fault.detail.as_deref(), Some("apo-ws-1"));
        assert_eq!(
            fault.to_string(),
            "SOAP fault `boom` (soapenv:Client): apo-ws-1"
        );

        let xml = soap_document(
            "<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>y</faultstring>\
             </soapenv:Fault>",
        );
        assert_eq!(fault_of(&xml).detail, None);
    }

    #[test]
    fn html_error_page_is_not_soap() {
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
             <body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.<br>\
             {}</p></body></html>",
            "x".repeat(400)
        );
        let err = parse_response(page.as_bytes(), Some("text/html"), "op").unwrap_err();
        let SoapError::NotSoap(message) = &err else {
            panic!("expected NotSoap, got {err:?}");
        };
        assert!(message.contains("text/html"), "{message}");
        assert!(message.contains("502 Bad Gateway"), "{message}");
        assert!(message.chars().count() < 250, "{message}");
        assert!(err.to_string().starts_with("not a SOAP message"));
    }

    #[test]
    fn other_xml_is_not_soap() {
        let err = parse_response(b"<error>quota</error>", None, "op").unwrap_err();
        assert!(matches!(err, SoapError::NotSoap(_)), "{err:?}");
        let no_body = format!("<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NAMESPACE}\"/>");
        let err = parse_response(no_body.as_bytes(), None, "op").unwrap_err();
        assert!(matches!(err, SoapError::NotSoap(_)), "{err:?}");
    }

    #[test]
    fn truncated_envelope_is_an_xml_error() {
        let xml = response_envelope(NS, "op", "<r><a>1</a></r>");
        let cut = &xml.as_bytes()[..xml.len() - 40];
        let err = parse_response(cut, None, "op").unwrap_err();
        assert!(
            matches!(err, SoapError::Xml(XmlError::Truncated { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn response_names_cover_versioned_operations() {
        assert_eq!(
            response_names("recupererIAAnnuelles_v2"),
            [
                "recupererIAAnnuelles_v2Response",
                "recupererIAAnnuellesResponse_v2"
            ]
        );
        assert_eq!(response_names("recupererCGE"), ["recupererCGEResponse"]);
        assert_eq!(response_names("a_b"), ["a_bResponse"]);
    }
}
