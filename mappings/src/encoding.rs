//! The text encodings an export may be declared in, and their strict decoding.
//!
//! An export's encoding is **declared** in its mapping, never guessed: a guess that is wrong
//! once turns "Hélène" into "HÃ©lÃ¨ne" in the contract store without anyone noticing. So
//! decoding is strict: bytes that cannot be in the declared encoding are an error that says
//! which byte and which encoding to declare instead; they are never replaced by U+FFFD.
//!
//! # The Latin encodings and bytes 0x80–0x9F
//!
//! encoding_rs follows the WHATWG Encoding Standard, where the label `iso-8859-1` means
//! windows-1252 (browsers do so because most "Latin-1" pages are really windows-1252). We
//! keep the two apart, because a mapping that says iso-8859-1 means it:
//!
//! * **iso-8859-1** is decoded by a tiny exact decoder of our own (byte `b` is `U+00bb`):
//!   encoding_rs has no true ISO-8859-1 decoder.
//! * **iso-8859-15** uses encoding_rs's `ISO_8859_15`.
//! * **windows-1252** uses encoding_rs's `WINDOWS_1252`.
//!
//! In ISO/IEC 8859-1 and 8859-15, bytes 0x80–0x9F are not characters (the IANA charsets map
//! them to C1 control codes, which never occur in names, codes or labels). An export that
//! holds them is windows-1252 (where they are `€`, `’`, `œ`, `…`) declared as iso-8859-1/15:
//! decoding refuses them and the error says to declare windows-1252. Likewise the five bytes
//! that windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) are refused there.
//!
//! UTF-8 is validated with the standard library (`str::from_utf8`), which is as strict as
//! encoding_rs and tells the offset of the first bad byte without a second pass.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The declared encoding of a source (never guessed).
///
/// All four are ASCII-compatible, so the structure of CSV, JSON Lines and XML (delimiters,
/// quotes, braces, markup) can be parsed on raw bytes and only values need decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// UTF-8 (a byte order mark at the start of a file is skipped by the readers).
    #[default]
    Utf8,
    /// ISO-8859-1 (Latin-1), exactly: bytes 0xA0–0xFF are U+00A0–U+00FF.
    Iso8859_1,
    /// ISO-8859-15 (Latin-9): Latin-1 with `€`, `œ`, `Œ`, `Š`, `š`, `Ž`, `ž`, `Ÿ`.
    Iso8859_15,
    /// Windows-1252 (cp1252): Latin-1 plus `€ ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ`
    /// in 0x80–0x9F. The usual encoding of "Latin-1" exports from Windows tools (Excel).
    Windows1252,
}

/// The names accepted by [`Encoding::from_str`], for error messages and documentation.
pub const ACCEPTED_NAMES: &str =
    "utf-8 (utf8), iso-8859-1 (latin1), iso-8859-15 (latin9), windows-1252 (cp1252)";

impl Encoding {
    /// The canonical name of the encoding, as written in mappings and messages.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Iso8859_1 => "iso-8859-1",
            Encoding::Iso8859_15 => "iso-8859-15",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    /// Decodes `bytes` strictly: borrowed when nothing needs converting (valid UTF-8, or
    /// ASCII in a Latin encoding), an error at the first byte that cannot be in this encoding.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, str>, DecodeError> {
        match self {
            Encoding::Utf8 => decode_utf8(bytes),
            Encoding::Iso8859_1 => {
                refuse_bytes(*self, bytes, is_c1)?;
                Ok(decode_latin1(bytes))
            }
            Encoding::Iso8859_15 => {
                refuse_bytes(*self, bytes, is_c1)?;
                Ok(decode_with(encoding_rs::ISO_8859_15, bytes))
            }
            Encoding::Windows1252 => {
                refuse_bytes(*self, bytes, is_undefined_in_windows_1252)?;
                Ok(decode_with(encoding_rs::WINDOWS_1252, bytes))
            }
        }
    }

    /// Encodes `text` (writing test drops and samples): an error names the first
    /// character this encoding cannot hold (ISO-8859-1 has no `œ` nor `€`).
    pub fn encode<'a>(&self, text: &'a str) -> Result<Cow<'a, [u8]>, String> {
        let unencodable =
            |c: char| format!("`{c}` (U+{:04X}) cannot be written in {self}", c as u32);
        match self {
            Encoding::Utf8 => Ok(Cow::Borrowed(text.as_bytes())),
            Encoding::Iso8859_1 => text
                .chars()
                .map(|c| {
                    u8::try_from(u32::from(c))
                        .ok()
                        .filter(|b| !is_c1(*b))
                        .ok_or_else(|| unencodable(c))
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Cow::Owned),
            Encoding::Iso8859_15 | Encoding::Windows1252 => {
                let target = match self {
                    Encoding::Iso8859_15 => encoding_rs::ISO_8859_15,
                    _ => encoding_rs::WINDOWS_1252,
                };
                let (bytes, _, lossy) = target.encode(text);
                if lossy {
                    let bad = text
                        .chars()
                        .find(|c| target.encode(&c.to_string()).2)
                        .unwrap_or('?');
                    return Err(unencodable(bad));
                }
                Ok(bytes)
            }
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An encoding name that is not one of [`ACCEPTED_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoding `{0}`: accepted names are {ACCEPTED_NAMES}")]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    /// Case-insensitive; `-` and `_` are ignored, so `UTF-8`, `utf8`, `ISO_8859-1`,
    /// `Latin1`, `CP1252` are all accepted.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match key.as_str() {
            "utf8" => Ok(Encoding::Utf8),
            "iso88591" | "latin1" => Ok(Encoding::Iso8859_1),
            "iso885915" | "latin9" => Ok(Encoding::Iso8859_15),
            "windows1252" | "cp1252" => Ok(Encoding::Windows1252),
            _ => Err(UnknownEncoding(name.to_string())),
        }
    }
}

/// Bytes that cannot be in the declared encoding.
///
/// `offset` is relative to the slice given to [`Encoding::decode`]; readers add the file and
/// line. The message says what the bytes probably are and what to declare instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct DecodeError {
    /// The declared encoding that refused the bytes.
    pub encoding: Encoding,
    /// Offset of the first refused byte in the decoded slice.
    pub offset: usize,
    /// The first refused byte.
    pub byte: u8,
}

impl DecodeError {
    /// The teaching message: which byte, the declared encoding, what to declare instead.
    fn describe(&self) -> String {
        let (byte, offset, declared) = (self.byte, self.offset, self.encoding);
        match declared {
            Encoding::Utf8 => format!(
                "not valid UTF-8 (byte 0x{byte:02X} at offset {offset} of the value) but the \
                 declared encoding is utf-8; is it iso-8859-1 or windows-1252? Declare the \
                 encoding the file is really written in"
            ),
            Encoding::Iso8859_1 | Encoding::Iso8859_15 => format!(
                "not valid {declared} (byte 0x{byte:02X} at offset {offset} of the value is \
                 not a character there): bytes 0x80-0x9F are `€ ’ œ …` only in windows-1252; \
                 declare the encoding windows-1252"
            ),
            Encoding::Windows1252 => format!(
                "not valid windows-1252 (byte 0x{byte:02X} at offset {offset} of the value is \
                 undefined there); is the file utf-8 or in another encoding?"
            ),
        }
    }
}

/// Strict UTF-8: borrowed when valid, otherwise the first bad byte.
fn decode_utf8(bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|error| {
            let offset = error.valid_up_to();
            DecodeError {
                encoding: Encoding::Utf8,
                offset,
                byte: bytes.get(offset).copied().unwrap_or_default(),
            }
        })
}

/// Fails at the first byte `refused` says cannot be in `encoding`.
fn refuse_bytes(
    encoding: Encoding,
    bytes: &[u8],
    refused: fn(u8) -> bool,
) -> Result<(), DecodeError> {
    match bytes.iter().position(|b| refused(*b)) {
        Some(offset) => Err(DecodeError {
            encoding,
            offset,
            byte: bytes[offset],
        }),
        None => Ok(()),
    }
}

/// Bytes 0x80–0x9F: C1 control codes in ISO-8859-1/15, never text.
fn is_c1(byte: u8) -> bool {
    (0x80..=0x9F).contains(&byte)
}

/// The five bytes windows-1252 leaves undefined (WHATWG maps them to C1 controls).
fn is_undefined_in_windows_1252(byte: u8) -> bool {
    matches!(byte, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D)
}

/// Exact ISO-8859-1: every byte is the code point of the same value.
fn decode_latin1(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // ASCII bytes are valid UTF-8: no copy.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    Cow::Owned(bytes.iter().map(|b| char::from(*b)).collect())
}

/// A single-byte encoding_rs decoder, after [`refuse_bytes`] ruled out undefined bytes (these
/// decoders map every byte, so nothing is replaced).
fn decode_with<'a>(encoding: &'static encoding_rs::Encoding, bytes: &'a [u8]) -> Cow<'a, str> {
    encoding.decode_without_bom_handling(bytes).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_aliases_accepted() {
        for (name, expected) in [
            ("utf-8", Encoding::Utf8),
            ("UTF8", Encoding::Utf8),
            ("ISO-8859-1", Encoding::Iso8859_1),
            ("latin1", Encoding::Iso8859_1),
            ("iso_8859-15", Encoding::Iso8859_15),
            ("Latin9", Encoding::Iso8859_15),
            ("windows-1252", Encoding::Windows1252),
            ("CP1252", Encoding::Windows1252),
        ] {
            assert_eq!(name.parse::<Encoding>(), Ok(expected), "{name}");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_accepted_ones() {
        let error = "utf-16".parse::<Encoding>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`utf-16`"), "{message}");
        assert!(message.contains("iso-8859-1 (latin1)"), "{message}");
        assert!(message.contains("windows-1252"), "{message}");
    }

    #[test]
    fn utf8_is_strict_and_borrows_when_valid() {
        let decoded = Encoding::Utf8.decode("Hélène".as_bytes()).unwrap();
        assert!(matches!(decoded, Cow::Borrowed("Hélène")));
        let error = Encoding::Utf8.decode(b"H\xe9l\xe8ne").unwrap_err();
        assert_eq!((error.offset, error.byte), (1, 0xE9));
        let message = error.to_string();
        assert!(message.contains("not valid UTF-8"), "{message}");
        assert!(
            message.contains("is it iso-8859-1 or windows-1252?"),
            "{message}"
        );
    }

    #[test]
    fn latin1_is_exact_and_refuses_c1_bytes() {
        assert_eq!(
            Encoding::Iso8859_1.decode(b"H\xe9l\xe8ne").unwrap(),
            "Hélène"
        );
        assert_eq!(Encoding::Iso8859_1.decode(b"\xff\xa0").unwrap(), "ÿ\u{a0}");
        let error = Encoding::Iso8859_1.decode(b"l\x92an").unwrap_err();
        assert_eq!((error.offset, error.byte), (1, 0x92));
        assert!(error
            .to_string()
            .contains("declare the encoding windows-1252"));
    }

    #[test]
    fn latin9_has_the_euro_sign_and_oe() {
        assert_eq!(Encoding::Iso8859_15.decode(b"\xa4 \xbd").unwrap(), "€ œ");
        assert!(Encoding::Iso8859_15.decode(b"\x80").is_err());
    }

    #[test]
    fn windows_1252_decodes_0x80_to_0x9f_and_refuses_undefined_bytes() {
        assert_eq!(
            Encoding::Windows1252
                .decode(b"\x80 c\x9cur l\x92\xe9t\xe9")
                .unwrap(),
            "€ cœur l’été"
        );
        let error = Encoding::Windows1252.decode(b"a\x81").unwrap_err();
        assert_eq!((error.offset, error.byte), (1, 0x81));
    }

    #[test]
    fn ascii_is_borrowed_in_every_encoding() {
        for encoding in [
            Encoding::Utf8,
            Encoding::Iso8859_1,
            Encoding::Iso8859_15,
            Encoding::Windows1252,
        ] {
            assert!(matches!(
                encoding.decode(b"abc").unwrap(),
                Cow::Borrowed("abc")
            ));
        }
    }
}
