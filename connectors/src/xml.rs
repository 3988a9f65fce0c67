//! A small XML tree reader for web-service responses (SOAP bodies of a few MB at most).
//!
//! [`parse`] decodes the body in the encoding it declares (Apogée publishes ISO-8859-15
//! contracts and sits behind proxies that relabel bodies, so nothing is assumed), refuses
//! DTDs, and returns the document element as an [`Element`] tree. Lookups by name are
//! ASCII case-insensitive because Apogée versions change the case of element names
//! (`LibNomUsuPerElp` in 6.50, `libNomUsuPerElp` in 6.70); unknown elements are kept and
//! simply ignored by callers.
//!
//! ```
//! use conpere_connectors::xml;
//!
//! // An ISO-8859-15 body: 0xBD is "œ" there (and "½" in ISO-8859-1).
//! let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\
//!     <ns1:etape xmlns:ns1=\"urn:x\"><LibWebVet>C".to_vec();
//! body.push(0xBD);
//! body.extend_from_slice(b"ur de m\xE9tier</LibWebVet><codEtp>L2INF</codEtp></ns1:etape>");
//!
//! let root = xml::parse(&body, Some("text/xml; charset=ISO-8859-15")).unwrap();
//! assert_eq!(root.name, "etape");
//! assert_eq!(root.text_of("libWebVet"), Some("Cœur de métier"));
//! assert_eq!(root.path(&["CODETP"]).map(|e| e.text.as_str()), Some("L2INF"));
//! ```

use encoding_rs::{DecoderResult, Encoding, REPLACEMENT, UTF_16BE, UTF_16LE, UTF_8};
use quick_xml::encoding::Decoder;
use quick_xml::errors::SyntaxError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::fmt;

/// Deepest element nesting accepted. Apogée's deepest response (`recupererSE_v4`) nests
/// about 15 levels; a limit keeps a hostile or broken body from exhausting the stack
/// (the tree is dropped, cloned and printed recursively).
pub const MAX_DEPTH: usize = 256;

/// How far into the body the XML declaration's end (`?>`) is looked for.
const DECLARATION_SCAN: usize = 1024;

/// One element of a parsed document.
///
/// Names are local names (the namespace prefix is stripped, the case is kept). Lookups
/// ([`child`](Self::child), [`children_named`](Self::children_named), [`path`](Self::path),
/// [`text_of`](Self::text_of), [`attribute`](Self::attribute)) ignore ASCII case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name, without namespace prefix, case as in the document.
    pub name: String,
    /// The element's own text and CDATA sections, concatenated and unescaped (not
    /// trimmed: a container element holds the whitespace between its children).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Attributes in document order as (local name, unescaped value); namespace
    /// declarations (`xmlns`, `xmlns:p`) are not kept.
    pub attributes: Vec<(String, String)>,
}

impl Element {
    /// The first child whose name equals `name`, ignoring ASCII case.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Every child whose name equals `name`, ignoring ASCII case, in document order
    /// (repeated `…Return` records, `item`s of a `Tableau…` list).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// Follows `path` one child at a time (first match at each step, ASCII
    /// case-insensitive); the empty path is `self`.
    ///
    /// ```
    /// let root = conpere_connectors::xml::parse(
    ///     b"<r><etape><codeEtp>L2INF</codeEtp></etape></r>", None).unwrap();
    /// assert_eq!(root.path(&["etape", "codeEtp"]).unwrap().text, "L2INF");
    /// assert!(root.path(&["etape", "versionEtp"]).is_none());
    /// ```
    pub fn path(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// The trimmed text of the child `name`; `None` when the child is absent, nil or
    /// holds only whitespace (Apogée sends empty and nil fields interchangeably).
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).and_then(Element::value)
    }

    /// This element's own text, trimmed; `None` when empty or whitespace only.
    pub fn value(&self) -> Option<&str> {
        Some(self.text.trim()).filter(|t| !t.is_empty())
    }

    /// The value of the attribute with local name `name` (any prefix, ASCII
    /// case-insensitive), the first one if several prefixes share a local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `true` when the element carries `xsi:nil="true"` (or `"1"`), whatever the
    /// prefix bound to the XML Schema instance namespace.
    pub fn is_nil(&self) -> bool {
        self.attribute("nil")
            .is_some_and(|v| matches!(v.trim(), "true" | "1"))
    }
}

/// A position in the decoded document: 1-based line and column (in characters), which
/// stay meaningful whatever the body's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of the decoded text.
    fn in_text(text: &str, offset: u64) -> Position {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        // Back off to a character boundary: quick-xml offsets always are, but be safe.
        let offset = (0..=offset)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Where the encoding used to decode a body was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingOrigin {
    /// A byte order mark (or the UTF-16 byte pattern of `<?`, XML 1.0 appendix F).
    ByteOrderMark,
    /// The `encoding=` of the XML declaration.
    XmlDeclaration,
    /// The `charset=` parameter of the Content-Type header.
    ContentType,
    /// Nothing was declared: UTF-8, the XML default.
    Default,
}

impl fmt::Display for EncodingOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodingOrigin::ByteOrderMark => "byte order mark",
            EncodingOrigin::XmlDeclaration => "XML declaration",
            EncodingOrigin::ContentType => "Content-Type charset",
            EncodingOrigin::Default => "XML default, nothing declared",
        })
    }
}

/// Why a body could not be read as XML; each message says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The declared encoding is unknown or not usable.
    #[error("unsupported encoding `{label}` (from the {origin})")]
    UnsupportedEncoding {
        /// The label as declared.
        label: String,
        /// Where it was declared.
        origin: EncodingOrigin,
    },
    /// The XML declaration, readable as ASCII, names a UTF-16 encoding: it cannot be.
    #[error(
        "the XML declaration says `{label}` but the document is not encoded in it \
         (its declaration reads as ASCII)"
    )]
    DeclarationMismatch {
        /// The declared label.
        label: String,
    },
    /// The bytes are not valid in the encoding chosen (never replaced by U+FFFD: a
    /// mangled name must not reach the store).
    #[error(
        "byte {offset} of the body is not valid {encoding} (encoding from the {origin}): \
         the body is not in that encoding"
    )]
    InvalidBytes {
        /// The encoding's name (WHATWG: `windows-1252` for an `iso-8859-1` label).
        encoding: &'static str,
        /// Where that encoding came from.
        origin: EncodingOrigin,
        /// Offset of the first invalid byte in the body as received.
        offset: usize,
    },
    /// A `<!DOCTYPE …>`: entity declarations allow "billion laughs" expansion bombs.
    #[error("{position}: DTDs are not accepted (XML bomb protection)")]
    Dtd {
        /// Where the DOCTYPE starts.
        position: Position,
    },
    /// The document ends inside markup or with elements still open (a cut
    /// connection, a size cap).
    #[error("the document is truncated at {position}{}", inside(.open))]
    Truncated {
        /// Where the document ends, or where the markup it ends in starts.
        position: Position,
        /// The open elements, outermost first, separated by `/` (empty before the
        /// document element).
        open: String,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("{position}: elements are nested deeper than {limit} levels")]
    TooDeep {
        /// The element that went too deep.
        position: Position,
        /// The limit.
        limit: usize,
    },
    /// Not well-formed: bad syntax, mismatched end tag, unknown entity, bad attribute,
    /// text or a second element outside the document element…
    #[error("malformed XML at {position}: {message}")]
    Malformed {
        /// Where the problem was seen.
        position: Position,
        /// What is wrong.
        message: String,
    },
    /// Nothing but whitespace, comments or declarations.
    #[error("the body holds no XML element")]
    NoElement,
}

/// The "inside `a/b`" part of a truncation message; nothing before the document element.
fn inside(open: &str) -> String {
    if open.is_empty() {
        String::new()
    } else {
        format!(", inside `{open}`")
    }
}

/// Decodes `bytes` and returns its document element.
///
/// The encoding is taken from, in order: a byte order mark, the XML declaration's
/// `encoding=`, the `charset=` of `content_type`, else UTF-8. When the declaration and
/// the Content-Type disagree the declaration wins (the producer wrote it; proxies
/// rewrite headers) and the disagreement is logged at debug level. Bytes invalid in that
/// encoding are an error, never replaced.
///
/// Refuses DTDs; expands only the five predefined entities and character references.
///
/// ```
/// use conpere_connectors::xml::{parse, XmlError};
///
/// let root = parse("<a><b>Fran\u{e7}ois &amp; C\u{e9}line</b></a>".as_bytes(), None).unwrap();
/// assert_eq!(root.text_of("B"), Some("François & Céline"));
///
/// let err = parse(b"<a><b>cut", None).unwrap_err();
/// assert!(matches!(err, XmlError::Truncated { .. }), "{err}");
/// ```
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Element, XmlError> {
    let text = decode(bytes, content_type)?;
    build_tree(&text)
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// The encoding chosen for a body and how many leading bytes (a BOM) to skip.
struct Detected {
    encoding: &'static Encoding,
    origin: EncodingOrigin,
    skip: usize,
}

/// Decodes the body in its detected encoding, refusing invalid bytes.
fn decode(bytes: &[u8], content_type: Option<&str>) -> Result<String, XmlError> {
    let detected = detect_encoding(bytes, content_type)?;
    let body = bytes.get(detected.skip..).unwrap_or_default();
    let invalid_at = |offset: usize| XmlError::InvalidBytes {
        encoding: detected.encoding.name(),
        origin: detected.origin,
        offset: detected.skip + offset,
    };
    if detected.encoding == UTF_8 {
        // Fast path: std validates UTF-8 and says where it stops being valid.
        return std::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|e| invalid_at(e.valid_up_to()));
    }
    decode_strict(detected.encoding, body).map_err(invalid_at)
}

/// Decodes with encoding_rs without BOM sniffing and without replacement; `Err` holds
/// the offset of the first malformed byte sequence.
fn decode_strict(encoding: &'static Encoding, body: &[u8]) -> Result<String, usize> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(body.len())
        .unwrap_or(body.len());
    let mut text = String::with_capacity(capacity);
    let mut read_total = 0;
    loop {
        let rest = body.get(read_total..).unwrap_or_default();
        let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut text, true);
        read_total += read;
        match result {
            DecoderResult::InputEmpty => return Ok(text),
            DecoderResult::OutputFull => text.reserve(rest.len().max(16)),
            DecoderResult::Malformed(bad, after) => {
                return Err(read_total - usize::from(bad) - usize::from(after));
            }
        }
    }
}

/// BOM, then the UTF-16 pattern of `<?`, then the declaration, then the Content-Type.
fn detect_encoding(bytes: &[u8], content_type: Option<&str>) -> Result<Detected, XmlError> {
    if let Some((encoding, skip)) = Encoding::for_bom(bytes) {
        return Ok(Detected {
            encoding,
            origin: EncodingOrigin::ByteOrderMark,
            skip,
        });
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        return Ok(Detected {
            encoding,
            origin: EncodingOrigin::ByteOrderMark,
            skip: 0,
        });
    }
    let charset = content_type.and_then(charset_parameter);
    if let Some(declared) = declared_encoding(bytes) {
        let encoding = resolve_declared(declared)?;
        log_disagreement(declared, encoding, charset);
        return Ok(Detected {
            encoding,
            origin: EncodingOrigin::XmlDeclaration,
            skip: 0,
        });
    }
    let (label, origin) = match charset {
        Some(charset) => (charset, EncodingOrigin::ContentType),
        None => ("utf-8", EncodingOrigin::Default),
    };
    Ok(Detected {
        encoding: resolve_label(label, origin)?,
        origin,
        skip: 0,
    })
}

/// XML 1.0 appendix F: `<?` in UTF-16 without a BOM.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes.get(..4)? {
        [0x3C, 0x00, 0x3F, 0x00] => Some(UTF_16LE),
        [0x00, 0x3C, 0x00, 0x3F] => Some(UTF_16BE),
        _ => None,
    }
}

/// The encoding declared by an XML declaration read as ASCII, validated: a declaration
/// readable as ASCII cannot be in UTF-16.
fn resolve_declared(label: &str) -> Result<&'static Encoding, XmlError> {
    let encoding = resolve_label(label, EncodingOrigin::XmlDeclaration)?;
    if encoding == UTF_16LE || encoding == UTF_16BE {
        return Err(XmlError::DeclarationMismatch {
            label: label.to_owned(),
        });
    }
    Ok(encoding)
}

/// Maps a label with encoding_rs (WHATWG labels: `iso-8859-1` and `latin1` give
/// windows-1252, a superset for printable characters; `iso-8859-15` stays ISO-8859-15).
fn resolve_label(label: &str, origin: EncodingOrigin) -> Result<&'static Encoding, XmlError> {
    Encoding::for_label(label.trim().as_bytes())
        // "replacement" decodes everything to U+FFFD: as good as unknown.
        .filter(|encoding| *encoding != REPLACEMENT)
        .ok_or_else(|| XmlError::UnsupportedEncoding {
            label: label.to_owned(),
            origin,
        })
}

/// The declaration wins over the header; say so when they differ, it explains odd text.
fn log_disagreement(declared: &str, encoding: &'static Encoding, charset: Option<&str>) {
    let Some(charset) = charset else { return };
    let header = Encoding::for_label(charset.trim().as_bytes());
    if header != Some(encoding) {
        tracing::debug!(
            declared,
            content_type_charset = charset,
            "XML declaration and Content-Type disagree on the encoding; using the declaration"
        );
    }
}

/// The `encoding` pseudo-attribute of an ASCII XML declaration at the start of `bytes`.
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(b"<?xml")?;
    // `<?xml-stylesheet …?>` is a processing instruction, not the declaration.
    if !rest.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let scan = rest.get(..DECLARATION_SCAN).unwrap_or(rest);
    let end = scan.windows(2).position(|w| w == b"?>")?;
    let declaration = std::str::from_utf8(scan.get(..end)?).ok()?;
    let after = declaration.split_once("encoding")?.1.trim_start();
    let value = after.strip_prefix('=')?.trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &value[1..];
    value.split_once(quote).map(|(label, _)| label)
}

/// The `charset` parameter of a Content-Type value, unquoted.
fn charset_parameter(content_type: &str) -> Option<&str> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.trim().trim_matches('"').trim())
        .filter(|value| !value.is_empty())
}

// ---------------------------------------------------------------------------------------
// Tree
// ---------------------------------------------------------------------------------------

/// Builds the element tree iteratively (an explicit stack, so depth costs no recursion).
struct TreeBuilder<'t> {
    text: &'t str,
    /// UTF-8 always: `Reader::from_str` locks it, whatever the declaration says.
    decoder: Decoder,
    open: Vec<Element>,
    root: Option<Element>,
}

/// Parses decoded text into the document element.
fn build_tree(text: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);
    let mut builder = TreeBuilder {
        text,
        decoder: reader.decoder(),
        open: Vec::new(),
        root: None,
    };
    loop {
        let start = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| builder.read_error(reader.error_position(), e))?;
        if builder.handle(event, start)? {
            break;
        }
    }
    builder.finish(reader.buffer_position())
}

impl TreeBuilder<'_> {
    /// Applies one event; `Ok(true)` at the end of the input.
    fn handle(&mut self, event: Event<'_>, start: u64) -> Result<bool, XmlError> {
        match event {
            Event::Start(tag) => {
                let element = self.element(&tag, start)?;
                self.open_element(element, start)?;
            }
            Event::Empty(tag) => {
                let element = self.element(&tag, start)?;
                self.place(element, start)?;
            }
            Event::End(_) => {
                // quick-xml has already checked the name against the open element.
                if let Some(element) = self.open.pop() {
                    self.place(element, start)?;
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| self.malformed(start, e))?;
                self.add_text(&text, start)?;
            }
            Event::CData(cdata) => {
                let text = cdata.decode().map_err(|e| self.malformed(start, e))?;
                self.add_text(&text, start)?;
            }
            Event::DocType(_) => {
                return Err(XmlError::Dtd {
                    position: self.position(start),
                })
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => return Ok(true),
        }
        Ok(false)
    }

    /// An element from a start tag: local name and attributes, namespace
    /// declarations left out.
    fn element(&self, tag: &BytesStart<'_>, start: u64) -> Result<Element, XmlError> {
        let decoder = self.decoder;
        let name = decoder
            .decode(tag.local_name().as_ref())
            .map_err(|e| self.malformed(start, e))?
            .into_owned();
        let mut attributes = Vec::new();
        for attribute in tag.attributes() {
            let attribute = attribute.map_err(|e| self.malformed(start, e))?;
            if attribute.key.as_namespace_binding().is_some() {
                continue;
            }
            let key = decoder
                .decode(attribute.key.local_name().as_ref())
                .map_err(|e| self.malformed(start, e))?
                .into_owned();
            let value = attribute
                .decode_and_unescape_value(decoder)
                .map_err(|e| self.malformed(start, e))?
                .into_owned();
            attributes.push((key, value));
        }
        Ok(Element {
            name,
            attributes,
            ..Element::default()
        })
    }

    fn open_element(&mut self, element: Element, start: u64) -> Result<(), XmlError> {
        if self.open.is_empty() && self.root.is_some() {
            return Err(self.malformed(start, "a second element after the document element"));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(XmlError::TooDeep {
                position: self.position(start),
                limit: MAX_DEPTH,
            });
        }
        self.open.push(element);
        Ok(())
    }

    /// Attaches a complete element to its parent, or makes it the document element.
    fn place(&mut self, element: Element, start: u64) -> Result<(), XmlError> {
        match (self.open.last_mut(), &self.root) {
            (Some(parent), _) => parent.children.push(element),
            (None, None) => self.root = Some(element),
            (None, Some(_)) => {
                return Err(self.malformed(start, "a second element after the document element"))
            }
        }
        Ok(())
    }

    fn add_text(&mut self, text: &str, start: u64) -> Result<(), XmlError> {
        match self.open.last_mut() {
            Some(parent) => parent.text.push_str(text),
            // Whitespace around the document element is allowed, nothing else.
            None if text.trim().is_empty() => {}
            None => return Err(self.malformed(start, "text outside the document element")),
        }
        Ok(())
    }

    fn finish(self, end: u64) -> Result<Element, XmlError> {
        if !self.open.is_empty() {
            return Err(self.truncated(end));
        }
        self.root.ok_or(XmlError::NoElement)
    }

    /// quick-xml's syntax errors all mean "the input ended inside markup" (a tag, a
    /// comment, CDATA…), except `InvalidBangMarkup` which may also be `<!junk>`.
    fn read_error(&self, offset: u64, error: quick_xml::Error) -> XmlError {
        match error {
            quick_xml::Error::Syntax(SyntaxError::InvalidBangMarkup) => {
                self.malformed(offset, error)
            }
            quick_xml::Error::Syntax(_) => self.truncated(offset),
            error => self.malformed(offset, error),
        }
    }

    fn truncated(&self, offset: u64) -> XmlError {
        let open: Vec<&str> = self.open.iter().map(|e| e.name.as_str()).collect();
        XmlError::Truncated {
            position: self.position(offset),
            open: open.join("/"),
        }
    }

    fn position(&self, offset: u64) -> Position {
        Position::in_text(self.text, offset)
    }

    fn malformed(&self, offset: u64, error: impl fmt::Display) -> XmlError {
        XmlError::Malformed {
            position: self.position(offset),
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `head` + the Latin bytes + `tail`, for bodies that are not UTF-8.
    fn bytes(head: &str, latin: &[u8], tail: &str) -> Vec<u8> {
        [head.as_bytes(), latin, tail.as_bytes()].concat()
    }

    #[test]
    fn utf8_with_and_without_declaration() {
        let body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><r><nom>Gaëlle Lefèvre-Œhler</nom></r>";
        assert_eq!(
            parse(body.as_bytes(), None).unwrap().text_of("nom"),
            Some("Gaëlle Lefèvre-Œhler")
        );
        let body = "<r><nom>Ç'est ça</nom></r>";
        assert_eq!(
            parse(body.as_bytes(), Some("text/xml"))
                .unwrap()
                .text_of("nom"),
            Some("Ç'est ça")
        );
    }

    #[test]
    fn utf8_bom_is_skipped() {
        let body = [b"\xEF\xBB\xBF".as_slice(), "<r>é</r>".as_bytes()].concat();
        assert_eq!(parse(&body, None).unwrap().text, "é");
    }

    #[test]
    fn utf16_with_bom() {
        let mut body = vec![0xFF, 0xFE];
        for unit in "<?xml version=\"1.0\" encoding=\"UTF-16\"?><r>œuf</r>".encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(parse(&body, None).unwrap().text, "œuf");
    }

    #[test]
    fn iso_8859_1_declared() {
        let body = bytes(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r><lib>",
            b"Fran\xE7ois, \xE9l\xE8ve",
            "</lib></r>",
        );
        let root = parse(&body, None).unwrap();
        assert_eq!(root.text_of("lib"), Some("François, élève"));
    }

    #[test]
    fn iso_8859_1_from_content_type_only() {
        let body = bytes("<r>", b"Fran\xE7ois", "</r>");
        let root = parse(&body, Some("text/xml; charset=\"iso-8859-1\"")).unwrap();
        assert_eq!(root.text, "François");
    }

    #[test]
    fn iso_8859_15_keeps_oe_and_euro() {
        // 0xBD is "œ" and 0xA4 is "€" in ISO-8859-15 ("½" and "¤" in ISO-8859-1).
        let body = bytes(
            "<?xml version='1.0' encoding='ISO-8859-15'?><r>",
            b"C\xBDur \xE0 \xA4",
            "</r>",
        );
        assert_eq!(parse(&body, None).unwrap().text, "Cœur à €");
    }

    #[test]
    fn declaration_wins_over_content_type() {
        let body = bytes(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><r>",
            b"\xBD",
            "</r>",
        );
        let root = parse(&body, Some("text/xml; charset=UTF-8")).unwrap();
        assert_eq!(root.text, "œ");

        // And the other way round: a UTF-8 declaration on a body labelled Latin-1.
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><r>é</r>";
        let root = parse(body.as_bytes(), Some("text/xml; charset=ISO-8859-1")).unwrap();
        assert_eq!(root.text, "é");
    }

    #[test]
    fn invalid_bytes_are_refused_not_replaced() {
        // A Latin-1 "é" (0xE9) in a body that says nothing: UTF-8 by default.
        let body = bytes("<r>", b"Ren\xE9", "</r>");
        let err = parse(&body, None).unwrap_err();
        assert_eq!(
            err,
            XmlError::InvalidBytes {
                encoding: "UTF-8",
                origin: EncodingOrigin::Default,
                offset: 6
            }
        );
        assert!(err.to_string().contains("byte 6"), "{err}");

        let err = parse(&body, Some("text/xml; charset=utf-8")).unwrap_err();
        assert!(matches!(
            err,
            XmlError::InvalidBytes {
                origin: EncodingOrigin::ContentType,
                ..
            }
        ));
    }

    #[test]
    fn invalid_utf16_is_refused() {
        // An unpaired surrogate in UTF-16LE.
        let body = [
            &[0xFF, 0xFE, b'<', 0, b'r', 0, b'>', 0][..],
            &[0x00, 0xD8, b'<', 0],
        ]
        .concat();
        let err = parse(&body, None).unwrap_err();
        assert!(
            matches!(
                err,
                XmlError::InvalidBytes {
                    encoding: "UTF-16LE",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_encoding_is_refused() {
        let body = b"<?xml version=\"1.0\" encoding=\"klingon\"?><r/>";
        let err = parse(body, None).unwrap_err();
        assert!(err.to_string().contains("`klingon`"), "{err}");
        let err = parse(b"<r/>", Some("text/xml; charset=x-unknown")).unwrap_err();
        assert!(matches!(
            err,
            XmlError::UnsupportedEncoding {
                origin: EncodingOrigin::ContentType,
                ..
            }
        ));
    }

    #[test]
    fn ascii_declaration_claiming_utf16_is_refused() {
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><r/>";
        let err = parse(body, None).unwrap_err();
        assert!(matches!(err, XmlError::DeclarationMismatch { .. }), "{err}");
    }

    #[test]
    fn dtd_is_refused() {
        let body =
            b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">]>\n<r>&lol;</r>";
        let err = parse(body, None).unwrap_err();
        assert!(
            matches!(
                err,
                XmlError::Dtd {
                    position: Position { line: 2, .. }
                }
            ),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("DTDs are not accepted (XML bomb protection)"));
    }

    #[test]
    fn only_predefined_entities_and_character_references() {
        let root = parse(
            b"<r a=\"&quot;x&quot;\">&lt;&amp;&gt;&apos;&quot; &#233;&#x153;</r>",
            None,
        )
        .unwrap();
        assert_eq!(root.text, "<&>'\" éœ");
        assert_eq!(root.attribute("a"), Some("\"x\""));
        let err = parse(b"<r>&nbsp;</r>", None).unwrap_err();
        assert!(matches!(err, XmlError::Malformed { .. }), "{err}");
    }

    #[test]
    fn truncated_document_is_refused() {
        let err = parse(b"<r>\n<list>\n<item>12", None).unwrap_err();
        match &err {
            XmlError::Truncated { position, open } => {
                assert_eq!(open, "r/list/item");
                assert_eq!(position.line, 3);
            }
            other => panic!("unexpected {other}"),
        }
        // Cut inside a tag, a comment, before the document element.
        let err = parse(b"<r>\n<list><ite", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the document is truncated at line 2, column 7, inside `r/list`"
        );
        let err = parse(b"<r><!-- unclosed", None).unwrap_err();
        assert!(matches!(err, XmlError::Truncated { .. }), "{err}");
        let err = parse(b"<?xml version=\"1.0\"?><", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the document is truncated at line 1, column 22"
        );
    }

    #[test]
    fn mismatched_end_tag_is_refused() {
        let err = parse(b"<r>\n  <a>x</b>\n</r>", None).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains('a') && message.contains('b'), "{message}");
    }

    #[test]
    fn content_outside_the_document_element_is_refused() {
        assert!(parse(b"<a/><b/>", None).is_err());
        assert!(parse(b"<a></a>junk", None).is_err());
        assert_eq!(parse(b"  <!-- c -->  ", None), Err(XmlError::NoElement));
        assert_eq!(parse(b"", None), Err(XmlError::NoElement));
    }

    #[test]
    fn too_deep_is_refused() {
        let body = "<a>".repeat(MAX_DEPTH + 1);
        let err = parse(body.as_bytes(), None).unwrap_err();
        assert!(matches!(err, XmlError::TooDeep { .. }), "{err}");
    }

    #[test]
    fn names_are_local_and_lookups_ignore_case() {
        let body = br#"<ns1:resp xmlns:ns1="urn:x"><elp><LibNomUsuPerElp>Dupont</LibNomUsuPerElp></elp>
            <item>1</item><ITEM>2</ITEM><other>3</other><ns2:item xmlns:ns2="urn:y">4</ns2:item></ns1:resp>"#;
        let root = parse(body, None).unwrap();
        assert_eq!(root.name, "resp");
        assert_eq!(
            root.attributes,
            vec![],
            "namespace declarations are not attributes"
        );
        assert_eq!(
            root.path(&["ELP", "libNomUsuPerElp"]).unwrap().name,
            "LibNomUsuPerElp"
        );
        let items: Vec<&str> = root
            .children_named("item")
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(items, ["1", "2", "4"]);
        assert_eq!(root.path(&[]), Some(&root));
        assert!(root.child("missing").is_none());
    }

    #[test]
    fn text_of_trims_and_treats_empty_as_absent() {
        let root = parse(b"<r><a>  x  </a><b>   </b><c/></r>", None).unwrap();
        assert_eq!(root.text_of("a"), Some("x"));
        assert_eq!(root.text_of("b"), None);
        assert_eq!(root.text_of("c"), None);
        assert_eq!(root.text_of("d"), None);
    }

    #[test]
    fn cdata_is_concatenated_with_text() {
        let root = parse(b"<r>a<![CDATA[<b>&amp;</b>]]>c</r>", None).unwrap();
        assert_eq!(root.text, "a<b>&amp;</b>c");
    }

    #[test]
    fn nil_detection_with_any_prefix() {
        let body = br#"<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
            <a xsi:nil="true"/><b i:nil="1"/><c xsi:nil="false"/><d/></r>"#;
        let root = parse(body, None).unwrap();
        let nil: Vec<bool> = root.children.iter().map(Element::is_nil).collect();
        assert_eq!(nil, [true, true, false, false]);
    }

    #[test]
    fn declaration_and_charset_parsing() {
        assert_eq!(
            declared_encoding(b"<?xml version=\"1.0\" encoding = 'latin1' ?><r/>"),
            Some("latin1")
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><r/>"), None);
        assert_eq!(
            declared_encoding(b"<?xml-stylesheet encoding=\"x\"?>"),
            None
        );
        assert_eq!(
            charset_parameter("text/xml;Charset=\"ISO-8859-15\""),
            Some("ISO-8859-15")
        );
        assert_eq!(charset_parameter("text/xml"), None);
        assert_eq!(charset_parameter("text/xml; charset="), None);
    }
}
