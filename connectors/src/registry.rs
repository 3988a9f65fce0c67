//! Connectors by `kind`. The binary builds one registry with every adapter crate's
//! factory; adding an SIS is adding one `register` line there.
//!
//! ```
//! use conpere_connectors::{Registry, SourceConfig};
//! let registry = Registry::with_builtin();
//! let source = SourceConfig::from_toml("files", "[sources.files]\nkind = \"canonical\"\npath = \"/tmp\"\n").unwrap();
//! assert!(registry.build(&source).is_ok());
//! let typo = SourceConfig::from_toml("files", "[sources.files]\nkind = \"canonical\"\npaht = \"/tmp\"\n").unwrap();
//! let error = registry.build(&typo).err().expect("unknown key refused");
//! assert!(error.to_string().contains("paht"));
//! ```

use crate::config::{ConfigError, SourceConfig, COMMON_KEYS};
use crate::connector::{Connector, ConnectorFactory, Factory, FromSource};
use crate::spec::ConnectorSpec;
use std::collections::BTreeMap;

/// The known connector kinds.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<&'static str, Box<dyn ConnectorFactory>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry with the connectors of this crate (`canonical`).
    pub fn with_builtin() -> Registry {
        let mut registry = Registry::new();
        registry.add::<crate::canonical::CanonicalConnector>();
        registry
    }

    /// Adds the kind of connector `C` (replacing a factory of the same kind).
    pub fn add<C: FromSource>(&mut self) {
        self.register(Box::new(Factory::<C>::new()));
    }

    /// Adds a kind (replacing a factory of the same kind).
    pub fn register(&mut self, factory: Box<dyn ConnectorFactory>) {
        self.factories.insert(factory.spec().kind, factory);
    }

    /// Registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.factories.keys().copied().collect()
    }

    /// The spec of `kind`.
    pub fn spec(&self, kind: &str) -> Option<&'static ConnectorSpec> {
        self.factories.get(kind).map(|f| f.spec())
    }

    /// Builds the connector of `source`, after rejecting keys its kind does not know.
    pub fn build(&self, source: &SourceConfig) -> Result<Box<dyn Connector>, ConfigError> {
        let kind = &source.common.kind;
        let factory =
            self.factories
                .get(kind.as_str())
                .ok_or_else(|| ConfigError::UnknownKind {
                    source_name: source.name.clone(),
                    kind: kind.clone(),
                    known: self.kinds().join(", "),
                })?;
        let mut accepted = factory.spec().accepted_keys();
        accepted.extend(COMMON_KEYS.iter().map(|k| k.to_string()));
        // A secret written inline is reported by the connector as such, not as unknown.
        let secrets: Vec<&str> = factory
            .spec()
            .all_fields()
            .filter(|f| f.secret)
            .map(|f| f.name)
            .collect();
        for key in source.keys() {
            if secrets.contains(&key.as_str()) {
                return Err(ConfigError::SecretInFile {
                    source_name: source.name.clone(),
                    key,
                });
            }
            if !accepted.contains(&key) {
                accepted.sort();
                return Err(ConfigError::UnknownKey {
                    source_name: source.name.clone(),
                    kind: kind.clone(),
                    key,
                    known: accepted.join(", "),
                    origin: source.origin_suffix(),
                });
            }
        }
        factory.build(source)
    }
}
