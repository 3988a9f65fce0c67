//! The published contract, served back: `…/<Service>?wsdl` and the files it imports.
//!
//! `<Service>_Impl.wsdl` imports `abstract/<Service>.wsdl`, which imports
//! `../schemas/**.xsd`; relative to `{base}/<Service>` these resolve to
//! `{base}/abstract/…` and `{base}/schemas/…`, which the server maps onto the specs
//! directory. Files are served as they are (their declared ISO-8859-15 included), only
//! the `soap:address` of the service WSDL is rewritten to the simulator's URL.

use super::operations;
use std::path::{Component, Path, PathBuf};

/// A document to serve: bytes and `Content-Type`.
pub(crate) struct Document {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// Whether `name` can be a service name or a file name in a URL: no separators, no
/// dots that could climb the tree.
pub(crate) fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !name.starts_with('.')
}

/// The service WSDL: the specs' `<Service>_Impl.wsdl` with its address set to `address`,
/// or, without specs, a generated one listing the served operations. `None` when there
/// is no such service.
pub(crate) async fn service_wsdl(
    specs: Option<&Path>,
    service: &str,
    address: &str,
) -> Option<Document> {
    if !is_simple_name(service) {
        return None;
    }
    let Some(specs) = specs else {
        return generated_wsdl(service, address).map(|text| Document {
            bytes: text.into_bytes(),
            content_type: "text/xml; charset=UTF-8".to_owned(),
        });
    };
    // The published files spell the suffix `_Impl`, but for one service `_impl`.
    for suffix in ["_Impl.wsdl", "_impl.wsdl"] {
        if let Ok(bytes) = tokio::fs::read(specs.join(format!("{service}{suffix}"))).await {
            return Some(xml_document(rewrite_address(bytes, address)));
        }
    }
    None
}

/// A file of the specs directory at `relative` (`abstract/EtudiantMetier.wsdl`,
/// `schemas/etudiant/EtudiantDTO2.xsd`); `None` when absent or when the path tries to
/// leave the directory.
pub(crate) async fn spec_file(specs: &Path, relative: &str) -> Option<Document> {
    let path = safe_join(specs, relative)?;
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(xml_document(bytes))
}

/// `base/relative`, refusing absolute paths, `..`, and anything but plain names.
fn safe_join(base: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    for part in relative.split('/') {
        let normal = matches!(
            Path::new(part).components().next(),
            Some(Component::Normal(_))
        );
        if !is_simple_name(part) || !normal {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

/// Bytes served as XML, labelled with the encoding their declaration names.
fn xml_document(bytes: Vec<u8>) -> Document {
    let content_type = match declared_encoding(&bytes) {
        Some(encoding) => format!("text/xml; charset={encoding}"),
        None => "text/xml".to_owned(),
    };
    Document {
        bytes,
        content_type,
    }
}

/// The `encoding="…"` of an XML declaration, read as ASCII.
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let head = bytes.get(..bytes.len().min(200))?;
    let head = std::str::from_utf8(head).ok().or_else(|| {
        let end = head.iter().position(|b| !b.is_ascii())?;
        std::str::from_utf8(&head[..end]).ok()
    })?;
    let declaration = head.strip_prefix("<?xml")?.split("?>").next()?;
    let (_, rest) = declaration.split_once("encoding=")?;
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest.get(1..)?.split(quote).next()?;
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .then_some(value)
}

/// Replaces the `location` of the first `…:address` element (the SOAP port address) with
/// `address`, working on bytes so that the file's own encoding is untouched.
fn rewrite_address(bytes: Vec<u8>, address: &str) -> Vec<u8> {
    let Some(tag) = find(&bytes, b":address ", 0) else {
        tracing::warn!("simulator: the service WSDL has no soap:address to rewrite");
        return bytes;
    };
    let Some(start) = find(&bytes, b"location=\"", tag).map(|i| i + b"location=\"".len()) else {
        return bytes;
    };
    let Some(end) = find(&bytes, b"\"", start) else {
        return bytes;
    };
    let mut out = Vec::with_capacity(bytes.len() + address.len());
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(conpere_connectors::soap::escape(address).as_bytes());
    out.extend_from_slice(&bytes[end..]);
    out
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A minimal WSDL 1.1 for a served service when the published files are not at hand (a
/// user's machine running `conpere demo`): the binding lists the operations the
/// simulator answers, so that feature detection from `?wsdl` still works. It carries no
/// types.
fn generated_wsdl(service: &str, address: &str) -> Option<String> {
    if !operations::SERVICES.contains(&service) {
        return None;
    }
    let namespace = operations::namespace(service);
    let names: Vec<&str> = operations::of_service(service).map(|op| op.name).collect();
    let port_type: String = names
        .iter()
        .map(|name| format!("<wsdl:operation name=\"{name}\"/>"))
        .collect();
    let binding: String = names
        .iter()
        .map(|name| {
            format!(
                "<wsdl:operation name=\"{name}\"><wsdlsoap:operation soapAction=\"\"/>\
                 </wsdl:operation>"
            )
        })
        .collect();
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- Generated by the conpere Apogée simulator (no specs directory): only the \
         operations it serves. -->\n\
         <wsdl:definitions targetNamespace=\"{namespace}-impl\" xmlns:impl=\"{namespace}-impl\" \
         xmlns:intf=\"{namespace}\" xmlns:wsdlsoap=\"http://schemas.xmlsoap.org/wsdl/soap/\" \
         xmlns:wsdl=\"http://schemas.xmlsoap.org/wsdl/\">\
         <wsdl:portType name=\"{service}ServiceInterface\">{port_type}</wsdl:portType>\
         <wsdl:binding name=\"{service}SoapBinding\" type=\"impl:{service}ServiceInterface\">\
         <wsdlsoap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>\
         {binding}</wsdl:binding>\
         <wsdl:service name=\"{service}ServiceInterfaceService\">\
         <wsdl:port name=\"{service}\" binding=\"impl:{service}SoapBinding\">\
         <wsdlsoap:address location=\"{address}\"/></wsdl:port></wsdl:service>\
         </wsdl:definitions>\n",
        address = conpere_connectors::soap::escape(address),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_specs_directory() {
        let base = Path::new("/specs");
        assert_eq!(
            safe_join(base, "schemas/etudiant/EtudiantDTO2.xsd"),
            Some(PathBuf::from("/specs/schemas/etudiant/EtudiantDTO2.xsd"))
        );
        for bad in [
            "../etc/passwd",
            "schemas/../../x",
            "/etc/passwd",
            "a//b",
            "",
            ".hidden",
            "a\\b",
        ] {
            assert_eq!(safe_join(base, bad), None, "{bad}");
        }
    }

    #[test]
    fn the_address_is_rewritten_and_the_rest_kept_byte_for_byte() {
        let mut wsdl = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><d>\xE9".to_vec();
        wsdl.extend_from_slice(
            b"<wsdlsoap:address location=\"http://localhost:8080/x/services/EtudiantMetier\" /></d>",
        );
        let out = rewrite_address(wsdl, "http://127.0.0.1:1234/services/EtudiantMetier");
        let expected = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><d>\xE9<wsdlsoap:address \
            location=\"http://127.0.0.1:1234/services/EtudiantMetier\" /></d>";
        assert_eq!(out, expected.to_vec());
        assert_eq!(declared_encoding(&out), Some("ISO-8859-15"));
    }

    #[test]
    fn the_generated_wsdl_lists_the_served_operations() {
        let wsdl = generated_wsdl(
            "AdministratifMetier",
            "http://h/services/AdministratifMetier",
        )
        .unwrap();
        assert!(wsdl.contains("<wsdl:operation name=\"recupererIAAnnuelles_v2\">"));
        assert!(wsdl.contains("location=\"http://h/services/AdministratifMetier\""));
        assert!(!wsdl.contains("recupererSE_v4"));
        assert!(conpere_connectors::xml::parse(wsdl.as_bytes(), None).is_ok());
        assert_eq!(generated_wsdl("OpiMetier", "x"), None);
    }
}
