//! What a connector declares about its configuration, so conpere can validate a
//! `[sources.<name>]` table, reject unknown keys and write a commented example.

/// One configuration key of a connector.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Key name in `[sources.<name>]`.
    pub name: &'static str,
    /// Whether the key must be present.
    pub required: bool,
    /// A secret: given as `<name>_env = "VAR"` or `<name>_file = "/path"`, never inline.
    pub secret: bool,
    /// What the key means (one line).
    pub help: &'static str,
    /// An example value, as TOML.
    pub example: &'static str,
}

impl FieldSpec {
    /// A key (a `const fn`, so specs can be `static`).
    pub const fn new(
        name: &'static str,
        required: bool,
        secret: bool,
        help: &'static str,
        example: &'static str,
    ) -> FieldSpec {
        FieldSpec {
            name,
            required,
            secret,
            help,
            example,
        }
    }
}

/// A connector's self-description.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorSpec {
    /// The `kind` value that selects it.
    pub kind: &'static str,
    /// One line on what it reads.
    pub description: &'static str,
    /// Its own configuration keys (besides the common ones every source has).
    pub fields: &'static [FieldSpec],
    /// Groups of keys it takes from the SDK (e.g. [`crate::http::HttpSettings::FIELDS`]).
    pub shared_fields: &'static [&'static [FieldSpec]],
}

impl ConnectorSpec {
    /// The keys a `[sources.<name>]` table of this kind may hold (secrets expanded to
    /// their `_env` / `_file` forms).
    pub fn accepted_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for field in self.all_fields() {
            if field.secret {
                keys.push(format!("{}_env", field.name));
                keys.push(format!("{}_file", field.name));
            } else {
                keys.push(field.name.to_string());
            }
        }
        keys
    }

    /// Its own keys, then the shared groups'.
    pub fn all_fields(&self) -> impl Iterator<Item = &'static FieldSpec> {
        self.fields
            .iter()
            .chain(self.shared_fields.iter().flat_map(|group| group.iter()))
    }

    /// Problems with the spec itself (used by the conformance kit).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kind.is_empty()
            || !self
                .kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
        {
            problems.push(format!("kind `{}` must be lowercase ASCII", self.kind));
        }
        if self.description.trim().is_empty() {
            problems.push("description is empty".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for field in self.all_fields() {
            if !seen.insert(field.name) {
                problems.push(format!("field `{}` is declared twice", field.name));
            }
            if crate::config::COMMON_KEYS.contains(&field.name) {
                problems.push(format!(
                    "field `{}` shadows a common source key",
                    field.name
                ));
            }
            if field.help.trim().is_empty() {
                problems.push(format!("field `{}` has no help text", field.name));
            }
            if !field
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                problems.push(format!("field `{}` is not snake_case", field.name));
            }
        }
        problems
    }

    /// A commented TOML example of a source of this kind, for `conpere init`.
    pub fn example_toml(&self, name: &str) -> String {
        let mut out = format!(
            "# {}\n[sources.{name}]\nkind = \"{}\"\n",
            self.description, self.kind
        );
        for field in self.all_fields() {
            let key = if field.secret {
                format!("{}_env", field.name)
            } else {
                field.name.to_string()
            };
            let prefix = if field.required { "" } else { "# " };
            out.push_str(&format!(
                "{prefix}{key} = {}    # {}\n",
                field.example, field.help
            ));
        }
        out
    }
}
