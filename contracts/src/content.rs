//! What a contract version holds, and its hash.
//!
//! The content (DESIGN.md): per section the registration (step, diploma, main, regime)
//! and the path — the nodes the student follows, with label, kind, ECTS, period, the
//! choice taken through, carried over, exempted — and the section's ECTS per period; the
//! student's special statuses; the support measures; free-text objectives. Its hash is
//! `sha256:` + hex SHA-256 of its RFC 8785 (JSON Canonicalization Scheme) serialisation,
//! which is stored as it is, so that anyone can recompute the hash from the export.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Lower-case hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The RFC 8785 serialisation of `value`: keys sorted by UTF-16 code units, no
/// whitespace, numbers as ECMAScript prints them, strings with the minimal escapes.
pub fn canonical(value: &Value) -> String {
    serialise(&Canonical(value))
}

/// A JSON value serialised the RFC 8785 way: its objects' members by UTF-16 code units,
/// every number as the IEEE 754 double it is (§3.2.2.3).
struct Canonical<'a>(&'a Value);

impl serde::Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(number) => {
                serializer.serialize_f64(number.as_f64().expect("a JSON number is finite"))
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Canonical)),
            Value::Object(members) => {
                let mut members: Vec<(&String, &Value)> = members.iter().collect();
                members.sort_by(|a, b| by_utf16(a.0, b.0));
                serializer.collect_map(members.into_iter().map(|(k, v)| (k, Canonical(v))))
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

/// §3.2.3: keys by UTF-16 code units (a map iterates in UTF-8 order, which differs only
/// past U+FFFF: the sort of an already sorted list is one pass).
fn by_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// serde_json's compact output through [`JcsFormatter`]: RFC 8785 when `value` writes
/// its maps in UTF-16 key order.
fn serialise<T: serde::Serialize>(value: &T) -> String {
    let mut out = Vec::with_capacity(4096);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, JcsFormatter);
    value
        .serialize(&mut serializer)
        .expect("a content always serialises");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The hash of a canonical serialisation: `sha256:` + 64 lower-case hex digits.
pub fn hash(canonical: &str) -> String {
    hex_hash(&Sha256::digest(canonical.as_bytes()))
}

/// A SHA-256 digest as conpere writes hashes: `sha256:` + 64 lower-case hex digits.
pub fn hex_hash(digest: &[u8]) -> String {
    let mut hash = String::with_capacity(71);
    hash.push_str("sha256:");
    for byte in digest {
        hash.push(HEX[usize::from(byte >> 4)] as char);
        hash.push(HEX[usize::from(byte & 0xf)] as char);
    }
    hash
}

/// A content's canonical text and hash.
pub fn sealed(content: &Value) -> (String, String) {
    let text = canonical(content);
    let hash = hash(&text);
    (text, hash)
}

/// The RFC 8785 serialisation of a typed value whose every struct declares its fields in
/// UTF-16 code unit order and whose maps iterate in that order ([`Utf16Sorted`]):
/// serialised straight from the value, the way generation seals every contract.
/// (Debug builds check the text against [`canonical`].)
pub(crate) fn canonical_typed<T: serde::Serialize>(value: &T) -> String {
    let text = serialise(value);
    debug_assert_eq!(
        canonical(&serde_json::from_str(&text).expect("JSON")),
        text,
        "a typed content declares its fields out of RFC 8785 order"
    );
    text
}

/// serde_json's compact output with numbers as ECMAScript prints them: its string escapes
/// already are RFC 8785's.
struct JcsFormatter;

impl serde_json::ser::Formatter for JcsFormatter {
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, v: f64) -> std::io::Result<()> {
        // Non-finite numbers are no JSON: null, as serde_json writes them.
        match v.is_finite() {
            true => w.write_all(ryu_js::Buffer::new().format_finite(v).as_bytes()),
            false => w.write_all(b"null"),
        }
    }

    fn write_f32<W: ?Sized + std::io::Write>(&mut self, w: &mut W, v: f32) -> std::io::Result<()> {
        self.write_f64(w, f64::from(v))
    }
}

/// A map serialised with its keys in UTF-16 code unit order.
#[derive(Debug, Default)]
pub(crate) struct Utf16Sorted<V>(pub Vec<(String, V)>);

impl<V: serde::Serialize> serde::Serialize for Utf16Sorted<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<&(String, V)> = self.0.iter().collect();
        entries.sort_by(|a, b| by_utf16(&a.0, &b.0));
        serializer.collect_map(entries.into_iter().map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // RFC 8785, section 3.2.2 and appendix B: the serialiser's own examples.
    #[test]
    fn rfc_8785_examples() {
        let input: Value = serde_json::from_str(
            r#"{
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }"#,
        )
        .unwrap();
        assert_eq!(
            canonical(&input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        // Key order by UTF-16 code units (3.2.3): "\r" < "1" < "\u0080" < "ö" < "€" < "😀"…
        let sorting: Value = serde_json::from_str(
            r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
                "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                        \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
                        \"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canonical(&sorting), expected);
    }

    #[test]
    fn numbers_follow_ecmascript() {
        for (value, text) in [
            (json!(6.0), "6"),
            (json!(0.5), "0.5"),
            (json!(1e21), "1e+21"),
            (json!(1e-7), "1e-7"),
            (json!(123456789012345680000.0), "123456789012345680000"),
            (json!(-0.0), "0"),
        ] {
            assert_eq!(canonical(&value), text);
        }
    }

    /// A deterministic stream of awkward values: every escape, characters past U+FFFF
    /// in keys, numbers of every magnitude, nesting.
    fn awkward_values(seed: u64, count: usize) -> Vec<Value> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let pieces = [
            "a",
            "é",
            "€",
            "😀",
            "\u{fb33}",
            "\u{7f}",
            "\u{1}",
            "\u{1f}",
            "\"",
            "\\",
            "/",
            "\n",
            "\r",
            "\t",
            "\u{8}",
            "\u{c}",
            "\u{e000}",
            "\u{10ffff}",
            "Z",
            "1",
        ];
        let text = |next: &mut dyn FnMut() -> u64| -> String {
            (0..next() % 6)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect()
        };
        (0..count)
            .map(|_| {
                let mut object = serde_json::Map::new();
                for _ in 0..next() % 8 {
                    let number = f64::from_bits(next() << 31 | next());
                    let value = match next() % 5 {
                        0 if number.is_finite() => json!(number),
                        1 => json!(next() as i64 - (1 << 30)),
                        2 => json!([text(&mut next), null, true, (next() % 1000) as f64 / 8.0]),
                        3 => json!({ text(&mut next): { text(&mut next): false } }),
                        _ => json!(text(&mut next)),
                    };
                    object.insert(text(&mut next), value);
                }
                Value::Object(object)
            })
            .collect()
    }

    // The serialiser against serde_jcs (a slower, independent implementation).
    #[test]
    fn agrees_with_an_independent_implementation() {
        for value in awkward_values(8785, 2_000) {
            assert_eq!(
                canonical(&value),
                serde_jcs::to_string(&value).unwrap(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_canonical_text() {
        let (text, hash) = sealed(&json!({"b": 1, "a": [true]}));
        assert_eq!(text, r#"{"a":[true],"b":1}"#);
        assert_eq!(
            hash,
            "sha256:708747538ba81fd60b5aac8c646370de5e24abf70ab1872f67458a5a4f3af05d"
        );
        assert!(hash.starts_with("sha256:") && hash.len() == 71);
    }
}
