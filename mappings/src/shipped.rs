//! Mapping files shipped with conpere, named in a source's `mapping` setting instead of
//! a path.

/// `(name, text)` of every shipped mapping.
pub const SHIPPED: [(&str, &str); 2] = [
    (
        "canonical-csv",
        include_str!("../shipped/canonical-csv.toml"),
    ),
    (
        "oneroster-1.1",
        include_str!("../shipped/oneroster-1.1.toml"),
    ),
];

/// The text of the shipped mapping `name`.
pub fn get(name: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(shipped, _)| *shipped == name)
        .map(|(_, text)| *text)
}

/// The names of the shipped mappings, for messages.
pub fn names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::MappingFile;

    #[test]
    fn every_shipped_mapping_loads() {
        for (name, text) in SHIPPED {
            MappingFile::parse(&format!("shipped:{name}"), text).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
