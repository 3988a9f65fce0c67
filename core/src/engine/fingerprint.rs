//! A kind read exactly as it is stored, told without comparing it record by record.
//!
//! Most nights, most kinds of a full read are what the store already holds. Proving it
//! by joining the stage with the stored records costs a second per million rows; this
//! module proves it with one sum instead. While staging, each kind's records are summed
//! up as a [`Fingerprint`]: how many, and the exact sum of their content hashes. The
//! stored live records of the same kind, in the read's coverage, are summed up the same
//! way by one scan. A content hash covers the whole record, key included; so when both
//! counts and both sums are equal, the multisets of records are equal (up to the same
//! 64-bit hash collisions the merge already relies on): the kind has nothing to insert,
//! update or delete, and the read repeats no key (the store holds each key once).
//!
//! Such a kind skips its duplicate check, its merge and, when the kinds it refers to are
//! unchanged too, its reference checks: its records are stored, and the store holds no
//! orphan.

use super::checks::covered_sql;
use super::table::TableSpec;
use super::{Coverage, EngineError};
use crate::model::Kind;
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Client;

/// Some records of one kind, summed up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// How many.
    pub rows: u64,
    /// The exact sum of their content hashes.
    pub hash_sum: i128,
}

impl Fingerprint {
    /// Counts a record whose content hash is `hash`.
    pub fn add(&mut self, hash: i64) {
        self.rows += 1;
        self.hash_sum += i128::from(hash);
    }
}

/// What staging saw of each kind.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    records: BTreeMap<Kind, Fingerprint>,
    /// Kinds for which something else than a record was staged: a tombstone, or a key
    /// held back by quarantine. Either may change the store.
    not_only_records: BTreeSet<Kind>,
}

impl Staged {
    /// Adds the `records` of `kind` a batch staged; `only_records`: nothing else of
    /// `kind` was staged with them (no tombstone, no held-back key).
    pub fn add(&mut self, kind: Kind, records: Fingerprint, only_records: bool) {
        let sum = self.records.entry(kind).or_default();
        sum.rows += records.rows;
        sum.hash_sum += records.hash_sum;
        if !only_records {
            self.not_only_records.insert(kind);
        }
    }

    /// How many records of `kind` were staged.
    pub fn records(&self, kind: Kind) -> u64 {
        self.records.get(&kind).map_or(0, |f| f.rows)
    }

    /// The kinds of a full read (`vouched`: the coverage of the kinds the read can vouch
    /// for) whose records are exactly the stored live ones of source `source_id`.
    pub async fn unchanged_kinds(
        &self,
        client: &Client,
        vouched: &Coverage,
        source_id: i32,
    ) -> Result<Compared, EngineError> {
        let mut compared = Compared::default();
        for kind in Kind::ALL {
            let covered = covered_sql(vouched, kind, "t");
            // A kind the read does not cover (or only partly: years of a year-less
            // kind) is merged as usual; so is one with tombstones or held-back keys.
            if covered == "false" || self.not_only_records.contains(&kind) {
                continue;
            }
            let staged = self.records.get(&kind).copied().unwrap_or_default();
            let stored = stored(client, kind, &covered, source_id).await?;
            if stored == staged {
                compared.unchanged.insert(kind);
            }
            if covered == "true" {
                compared.stored_live.insert(kind, stored.rows);
            }
        }
        Ok(compared)
    }
}

/// What comparing the staged kinds with the store told.
#[derive(Debug, Default)]
pub(crate) struct Compared {
    /// The kinds read exactly as stored.
    pub unchanged: BTreeSet<Kind>,
    /// The live stored records of the kinds the read covers whole (all years), counted.
    pub stored_live: BTreeMap<Kind, u64>,
}

/// The stored live records of `kind` that the read covers (`covered`: SQL on alias `t`),
/// summed up.
async fn stored(
    client: &Client,
    kind: Kind,
    covered: &str,
    source_id: i32,
) -> Result<Fingerprint, EngineError> {
    // A hash's two halves summed apart: each sum fits a bigint for billions of rows, and
    // together they give the exact sum.
    let sql = format!(
        "SELECT count(*), coalesce(sum(hash >> 32), 0)::bigint, \
                coalesce(sum(hash & 4294967295), 0)::bigint FROM {} t \
         WHERE t.source_id = $1 AND t.deleted_at IS NULL AND ({covered})",
        TableSpec::of(kind).table()
    );
    let row = client
        .query_one(&sql, &[&source_id])
        .await
        .map_err(EngineError::db("comparing with the store"))?;
    let (high, low): (i64, i64) = (row.get(1), row.get(2));
    Ok(Fingerprint {
        rows: row.get::<_, i64>(0) as u64,
        hash_sum: (i128::from(high) << 32) + i128::from(low),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_multisets_sum_up_equal_and_a_changed_or_missing_or_repeated_one_does_not() {
        let of = |hashes: &[i64]| {
            let mut fingerprint = Fingerprint::default();
            hashes.iter().for_each(|h| fingerprint.add(*h));
            fingerprint
        };
        let stored = of(&[i64::MAX, i64::MAX, -3, 7]);
        // Order does not matter, and the sum does not wrap.
        assert_eq!(of(&[7, i64::MAX, -3, i64::MAX]), stored);
        assert_eq!(stored.hash_sum, 2 * i128::from(i64::MAX) + 4);
        assert_ne!(of(&[i64::MAX, i64::MAX, -3, 8]), stored, "a changed record");
        assert_ne!(of(&[i64::MAX, i64::MAX, -3]), stored, "a missing record");
        assert_ne!(
            of(&[i64::MAX, i64::MAX, -3, 7, 7]),
            stored,
            "a repeated record"
        );
    }
}
