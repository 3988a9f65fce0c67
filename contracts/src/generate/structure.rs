//! The course structure a generation reads: every live node and edge of the (source,
//! year) pairs in scope, held in memory. Its size is the structure's, never the number of
//! students: a path's nodes, parents and choices are looked up here rather than joined
//! per enrolment in SQL.

use crate::ContractsError;
use std::collections::HashMap;
use tokio_postgres::Client;

/// A live edge to a node from one of its parents.
#[derive(Debug, Clone)]
pub(crate) struct ParentEdge {
    /// The parent node.
    pub parent: String,
    /// The child's position under the parent.
    pub position: Option<i32>,
    /// The parent's period, when the parent is live and has one.
    pub parent_period: Option<String>,
}

/// A choice under a node: a child with a minimum or maximum number of elements taken
/// through it.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    /// The list the elements are taken through.
    pub child: String,
    /// The fewest elements to take (none when absent).
    pub min: Option<i32>,
    /// The most elements to take (any number when absent).
    pub max: Option<i32>,
}

/// A live node, as a path shows it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub label: String,
    pub kind: String,
    pub ects: Option<f64>,
    pub period: Option<String>,
}

/// The structure of one (source, year).
#[derive(Debug, Default)]
pub(crate) struct YearStructure {
    /// Live nodes by code.
    nodes: HashMap<String, Node>,
    /// Each node's parent edges, by parent.
    parents: HashMap<String, Vec<ParentEdge>>,
    /// Each node's choices.
    choices: HashMap<String, Vec<Choice>>,
}

impl YearStructure {
    /// The live node `node`.
    pub fn node(&self, node: &str) -> Option<&Node> {
        self.nodes.get(node)
    }

    /// The edges to `node` from its parents, ordered by parent.
    pub fn parents(&self, node: &str) -> &[ParentEdge] {
        self.parents.get(node).map_or(&[], Vec::as_slice)
    }

    /// The choices under `node`.
    pub fn choices(&self, node: &str) -> &[Choice] {
        self.choices.get(node).map_or(&[], Vec::as_slice)
    }

    /// For tests: units of `period` with their ECTS, under no parent.
    #[cfg(test)]
    pub fn with_units(units: &[(&str, f64)], period: &str) -> YearStructure {
        let unit = |ects| Node {
            label: String::new(),
            kind: "unit".into(),
            ects: Some(ects),
            period: Some(period.into()),
        };
        YearStructure {
            nodes: (units.iter())
                .map(|(code, ects)| (code.to_string(), unit(*ects)))
                .collect(),
            ..YearStructure::default()
        }
    }
}

/// The structures of the (source, year) pairs in scope.
#[derive(Debug, Default)]
pub(crate) struct Structure {
    years: HashMap<(i32, i32), YearStructure>,
    empty: YearStructure,
}

impl Structure {
    /// Reads the live nodes and edges of every (source, year) in `contract_scope`.
    pub async fn load(client: &Client) -> Result<Structure, ContractsError> {
        let mut structure = Structure::default();
        let nodes = client
            .query(
                "SELECT n.source_id, n.year, n.node, n.label, n.kind, n.ects, n.period \
                 FROM (SELECT DISTINCT source_id, year FROM contract_scope) y \
                 JOIN node n ON n.source_id = y.source_id AND n.year = y.year \
                  AND n.deleted_at IS NULL",
                &[],
            )
            .await
            .map_err(ContractsError::db("reading the course structure"))?;
        for row in nodes {
            let year = (structure.years)
                .entry((row.get(0), row.get(1)))
                .or_default();
            let ects: Option<f64> = row.get(5);
            year.nodes.insert(
                row.get(2),
                Node {
                    label: row.get(3),
                    kind: row.get(4),
                    ects: ects.filter(|e| e.is_finite()),
                    period: row.get(6),
                },
            );
        }
        let edges = client
            .query(
                "SELECT ed.source_id, ed.year, ed.parent, ed.child, ed.position, ed.min, \
                        ed.max, np.period \
                 FROM (SELECT DISTINCT source_id, year FROM contract_scope) y \
                 JOIN edge ed ON ed.source_id = y.source_id AND ed.year = y.year \
                  AND ed.deleted_at IS NULL \
                 LEFT JOIN node np ON np.source_id = ed.source_id AND np.year = ed.year \
                  AND np.node = ed.parent AND np.deleted_at IS NULL \
                 ORDER BY ed.source_id, ed.year, ed.parent, ed.child",
                &[],
            )
            .await
            .map_err(ContractsError::db("reading the course structure"))?;
        for row in edges {
            let year = structure.years.entry((row.get(0), row.get(1))).or_default();
            let (parent, child): (String, String) = (row.get(2), row.get(3));
            let (min, max): (Option<i32>, Option<i32>) = (row.get(5), row.get(6));
            if min.is_some() || max.is_some() {
                year.choices
                    .entry(parent.clone())
                    .or_default()
                    .push(Choice {
                        child: child.clone(),
                        min,
                        max,
                    });
            }
            year.parents.entry(child).or_default().push(ParentEdge {
                parent,
                position: row.get(4),
                parent_period: row.get(7),
            });
        }
        Ok(structure)
    }

    /// The structure of `source_id`'s `year` (empty when it has none).
    pub fn year(&self, source_id: i32, year: i32) -> &YearStructure {
        self.years.get(&(source_id, year)).unwrap_or(&self.empty)
    }
}
