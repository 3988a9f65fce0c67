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

/// The RFC 8785 serialisation of `value`: keys sorted by UTF-16 code units, no
/// whitespace, numbers as ECMAScript prints them, strings with the minimal escapes.
pub fn canonical(value: &Value) -> String {
    serde_jcs::to_string(value).expect("a JSON value always serialises")
}

/// The hash of a canonical serialisation: `sha256:` + 64 lower-case hex digits.
pub fn hash(canonical: &str) -> String {
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A content's canonical text and hash.
pub fn sealed(content: &Value) -> (String, String) {
    let text = canonical(content);
    let hash = hash(&text);
    (text, hash)
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
