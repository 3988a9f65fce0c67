//! The course structure of a period, from ODF ext v1 (README "Mapping"): the period's
//! espace, its formations (the roots), the maquette tree under each, and the detail of
//! each groupement for its choice range.
//!
//! Requests per period: the espaces (one page for most tenants), the formations (one page
//! per 100), one tree per formation and one detail per groupement — the details run
//! concurrently, within the client's bound.

use crate::api::{module_url, PageWalk, PegaseApi};
use crate::codes::CodeTables;
use conpere_connectors::http::Url;
use conpere_connectors::ConnectorError;
use conpere_model::{Edge, Node, NodeKind};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Page size of the ODF listings (ODF accepts up to 1 000).
const PAGE_SIZE: usize = 100;

/// The ODF module of one institution (`codeStructure`).
#[derive(Debug, Clone)]
pub struct OdfClient {
    api: PegaseApi,
    base: Url,
    structure: String,
}

/// A period (espace of type PERIODE) as ODF describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodSpace {
    /// Its UUID, which the object listings filter on.
    pub id: String,
    /// Its code (`PER-2024`).
    pub code: String,
    /// The academic year its records belong to.
    pub year: i32,
}

/// The structure of one period: nodes, edges, and the kind of every node code (the CHC
/// `chemin`s are read with it).
#[derive(Debug, Default)]
pub struct PeriodStructure {
    /// Nodes by code.
    pub nodes: BTreeMap<String, Node>,
    /// Edges by (parent, child).
    pub edges: BTreeMap<(String, String), Edge>,
}

impl PeriodStructure {
    /// The kind of the node of `code`, when the structure has it.
    pub fn kind(&self, code: &str) -> Option<NodeKind> {
        self.nodes.get(code).map(|n| n.kind)
    }
}

/// One object of a maquette tree (`ObjetMaquetteStructure`), the fields read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TreeObject {
    id: String,
    code: String,
    #[serde(default)]
    classe: Option<String>,
    #[serde(rename = "type", default)]
    object_type: Option<Value>,
    #[serde(default)]
    libelle: Option<String>,
    #[serde(default)]
    ects: Option<f64>,
    #[serde(default)]
    enfants: Vec<TreeChild>,
}

/// A link of the tree to a child.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TreeChild {
    #[serde(default = "yes")]
    obligatoire: bool,
    objet_maquette: TreeObject,
}

fn yes() -> bool {
    true
}

/// `plageDeChoix` of a groupement's detail.
#[derive(Debug, Default, Deserialize)]
struct ChoiceRange {
    #[serde(default)]
    min: Option<i32>,
    #[serde(default)]
    max: Option<i32>,
}

impl OdfClient {
    /// The ODF module at `base`, for institution `structure`.
    pub fn new(api: PegaseApi, base: Url, structure: &str) -> OdfClient {
        OdfClient {
            api,
            base,
            structure: structure.to_string(),
        }
    }

    fn url(&self, tail: &[&str]) -> Result<Url, ConnectorError> {
        let mut segments = vec![self.structure.as_str()];
        segments.extend_from_slice(tail);
        module_url(&self.base, "/api/odf/ext/v1/etablissement", &segments)
    }

    /// Every page of a listing, items in order.
    async fn listing(
        &self,
        url: Url,
        filters: &[(&str, &str)],
        operation: &str,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut listed = url;
        listed.query_pairs_mut().extend_pairs(filters);
        let mut pages = PageWalk::new(&self.api, listed, PAGE_SIZE, operation, "an ODF listing");
        let mut items = Vec::new();
        while let Some(page) = pages.next().await? {
            items.extend(page);
        }
        Ok(items)
    }

    /// The espaces of type PERIODE, by code.
    pub async fn periods(&self) -> Result<BTreeMap<String, PeriodSpace>, ConnectorError> {
        let url = self.url(&["espaces"])?;
        let items = self
            .listing(url, &[("type", "PERIODE")], "ODF espaces")
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let text = |key: &str| item.get(key)?.as_str().map(str::to_string);
                let year = item.get("anneeUniversitaire")?.as_i64()?;
                let space = PeriodSpace {
                    id: text("id")?,
                    code: text("code")?,
                    year: i32::try_from(year).ok()?,
                };
                Some((space.code.clone(), space))
            })
            .collect())
    }

    /// The structure of `period`: every formation's tree, with the groupements' ranges.
    pub async fn read(
        &self,
        period: &PeriodSpace,
        tables: &CodeTables,
        concurrency: usize,
    ) -> Result<PeriodStructure, ConnectorError> {
        let url = self.url(&["objets-maquette"])?;
        let filters = [
            ("espace", period.id.as_str()),
            ("typeObjetMaquette", "FORMATION"),
        ];
        let operation = format!("ODF formations of period {}", period.code);
        let roots = self.listing(url, &filters, &operation).await?;
        let mut structure = PeriodStructure::default();
        let mut groupements = HashMap::new();
        // Trees are fetched `concurrency` at a time and added in the listing's order.
        let fetches: Vec<_> = roots
            .iter()
            .filter_map(|root| root.get("id").and_then(Value::as_str))
            .map(|id| self.tree(id, &period.code))
            .collect();
        let mut trees = futures::stream::iter(fetches).buffered(concurrency.max(1));
        while let Some(tree) = trees.next().await {
            let mut builder = TreeBuilder {
                year: period.year,
                tables,
                structure: &mut structure,
                groupements: &mut groupements,
            };
            builder.add(&tree?);
        }
        let ranges = self.ranges(groupements, concurrency).await?;
        apply_ranges(&mut structure, &ranges);
        Ok(structure)
    }

    /// The tree under object `id`.
    async fn tree(&self, id: &str, period: &str) -> Result<TreeObject, ConnectorError> {
        #[derive(Deserialize)]
        struct Tree {
            racine: TreeObject,
        }
        let url = self.url(&["maquette", id])?;
        let operation = format!("ODF maquette {id} (period {period})");
        let tree: Tree = self.api.get(url, operation, "a maquette tree").await?;
        Ok(tree.racine)
    }

    /// The choice range of each groupement (code → range), details read concurrently.
    async fn ranges(
        &self,
        groupements: HashMap<String, String>,
        concurrency: usize,
    ) -> Result<HashMap<String, ChoiceRange>, ConnectorError> {
        futures::stream::iter(groupements)
            .map(|(code, id)| async move { Ok((code, self.range(&id).await?)) })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await
    }

    /// `descripteursObjetMaquette.plageDeChoix` of a groupement's detail.
    async fn range(&self, id: &str) -> Result<ChoiceRange, ConnectorError> {
        let url = self.url(&["objets-maquette", id])?;
        let detail: Value = self
            .api
            .get(url, format!("ODF objet-maquette {id}"), "an object detail")
            .await?;
        let range = detail
            .pointer("/descripteursObjetMaquette/plageDeChoix")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Ok(range)
    }
}

/// Adds trees to a period's structure.
struct TreeBuilder<'a> {
    year: i32,
    tables: &'a CodeTables,
    structure: &'a mut PeriodStructure,
    /// Groupement code → its object id (for its detail).
    groupements: &'a mut HashMap<String, String>,
}

impl TreeBuilder<'_> {
    /// The object, its children (ranked by their order) and their subtrees. A mutualised
    /// object appears under each parent: its node is kept once, each edge once.
    fn add(&mut self, object: &TreeObject) {
        let kind = self.tables.node_kind(
            object.classe.as_deref(),
            object.object_type.as_ref().and_then(type_code),
        );
        if kind == NodeKind::Choice {
            self.groupements
                .insert(object.code.clone(), object.id.clone());
        }
        self.structure
            .nodes
            .entry(object.code.clone())
            .or_insert_with(|| Node {
                year: self.year,
                node: object.code.clone(),
                kind,
                code: object.code.clone(),
                version: None,
                label: object.libelle.clone().unwrap_or_default(),
                ects: object.ects,
                period: None,
            });
        for (rank, child) in object.enfants.iter().enumerate() {
            let key = (object.code.clone(), child.objet_maquette.code.clone());
            self.structure.edges.entry(key).or_insert_with(|| Edge {
                year: self.year,
                parent: object.code.clone(),
                child: child.objet_maquette.code.clone(),
                mandatory: child.obligatoire,
                min: None,
                max: None,
                position: i32::try_from(rank + 1).ok(),
            });
            self.add(&child.objet_maquette);
        }
    }
}

/// The `type` of a tree object: a code, or an object carrying one.
fn type_code(value: &Value) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get("code").and_then(Value::as_str))
}

/// Sets each groupement's range on the edges leading to it.
fn apply_ranges(structure: &mut PeriodStructure, ranges: &HashMap<String, ChoiceRange>) {
    for edge in structure.edges.values_mut() {
        if let Some(range) = ranges.get(&edge.child) {
            (edge.min, edge.max) = (range.min, range.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tree_gives_nodes_ranked_edges_and_shared_nodes_once() {
        let leaf = json!({"id": "u3", "code": "EC1", "classe": "OBJET-FORMATION",
                          "type": {"code": "EC"}, "libelle": "Éco", "ects": 7.5, "enfants": []});
        let tree: TreeObject = serde_json::from_value(json!({
            "id": "u1", "code": "F1", "classe": "FORMATION", "type": "FORMATION",
            "libelle": "Licence", "enfants": [
                {"id": "u2", "obligatoire": false, "objetMaquette": {
                    "id": "u2", "code": "G1", "classe": "GROUPEMENT", "libelle": "Choix",
                    "enfants": [{"id": "u3", "obligatoire": false, "objetMaquette": leaf}]}},
                {"id": "u3", "obligatoire": true, "objetMaquette": leaf},
            ]
        }))
        .unwrap();
        let (mut structure, mut groupements) = (PeriodStructure::default(), HashMap::new());
        TreeBuilder {
            year: 2024,
            tables: &CodeTables::default(),
            structure: &mut structure,
            groupements: &mut groupements,
        }
        .add(&tree);
        let kinds: Vec<NodeKind> = structure.nodes.values().map(|n| n.kind).collect();
        assert_eq!(
            kinds,
            [NodeKind::Element, NodeKind::Diploma, NodeKind::Choice]
        );
        assert_eq!(structure.nodes["EC1"].ects, Some(7.5));
        let edge = &structure.edges[&("F1".to_string(), "EC1".to_string())];
        assert_eq!((edge.position, edge.mandatory), (Some(2), true));
        assert_eq!(structure.edges.len(), 3);
        assert_eq!(groupements["G1"], "u2");
        let ranges = HashMap::from([(
            "G1".to_string(),
            ChoiceRange {
                min: Some(1),
                max: Some(2),
            },
        )]);
        apply_ranges(&mut structure, &ranges);
        let into_choice = &structure.edges[&("F1".to_string(), "G1".to_string())];
        assert_eq!((into_choice.min, into_choice.max), (Some(1), Some(2)));
    }
}
