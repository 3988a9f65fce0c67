//! Which staged keys may repeat, told while staging, in constant memory.
//!
//! The duplicate check of a run ([`super::checks`]) used to group the whole stage by key
//! (0.6 s per million rows, at every run, for a snapshot that almost never repeats a
//! key). While staging, each key's hash goes through a Bloom filter of fixed size: a key
//! staged twice is always caught (no false negative), a few others with it (false
//! positives). The check then looks at those candidates only; beyond a bound (a huge
//! snapshot filling the filter), it falls back to grouping the whole stage.

use crate::model::Kind;
use std::collections::BTreeMap;

/// Bits of the filter: 8 MiB, whatever the snapshot's size (memory stays flat).
const BITS: usize = 1 << 26;
/// Hashes per key: about one false positive per 10 000 keys at a million keys.
const PROBES: u64 = 3;
/// Blocks of one cache line (512 bits, eight words).
const WORDS_PER_BLOCK: usize = 8;
const BLOCKS: usize = BITS / 512;
/// Beyond this many candidates of one kind, the check groups the whole stage instead.
const MAX_CANDIDATES: usize = 100_000;

/// The filter, and the candidate repeats of each kind.
pub(crate) struct Repeats {
    bits: Vec<u64>,
    candidates: BTreeMap<Kind, Vec<i64>>,
    overflowed: Vec<Kind>,
}

impl Repeats {
    /// An empty filter.
    pub fn new() -> Repeats {
        Repeats {
            bits: vec![0; BITS / 64],
            candidates: BTreeMap::new(),
            overflowed: Vec::new(),
        }
    }

    /// Notes a staged key of `kind` (its `key_hash`): a candidate when the filter may
    /// have seen it already.
    pub fn stage(&mut self, kind: Kind, key_hash: i64) {
        // The key hash is already a good 64-bit hash; the kind moves it elsewhere. The
        // filter is blocked: all the probes of a key fall in one cache line of 512 bits,
        // chosen by the high bits, so a key costs one cache miss, not one per probe
        // (three random reads in 8 MiB were 0.3 s per million keys).
        let h = ((key_hash as u64) ^ (kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let block = (h >> (64 - BLOCKS.trailing_zeros())) as usize * WORDS_PER_BLOCK;
        let mut seen = true;
        for i in 0..PROBES {
            let bit = ((h >> (9 * i)) & 511) as usize;
            let (word, mask) = (block + bit / 64, 1u64 << (bit % 64));
            seen &= self.bits[word] & mask != 0;
            self.bits[word] |= mask;
        }
        if seen && !self.overflowed.contains(&kind) {
            let list = self.candidates.entry(kind).or_default();
            list.push(key_hash);
            if list.len() > MAX_CANDIDATES {
                self.candidates.remove(&kind);
                self.overflowed.push(kind);
            }
        }
    }

    /// The key hashes of `kind` that may repeat (every one that does, and a few
    /// others); `None` when too many to list: check the whole stage.
    pub fn candidates(&self, kind: Kind) -> Option<&[i64]> {
        match self.overflowed.contains(&kind) {
            true => None,
            false => Some(self.candidates.get(&kind).map_or(&[], Vec::as_slice)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_always_a_candidate_and_few_others_are() {
        let mut repeats = Repeats::new();
        for n in 0..200_000_i64 {
            repeats.stage(Kind::Enrolment, n.wrapping_mul(0x2545_F491_4F6C_DD1D));
        }
        let false_positives = repeats.candidates(Kind::Enrolment).unwrap().len();
        assert!(false_positives < 50, "{false_positives}");
        let repeated = 7_i64.wrapping_mul(0x2545_F491_4F6C_DD1D);
        repeats.stage(Kind::Enrolment, repeated);
        assert!(repeats
            .candidates(Kind::Enrolment)
            .unwrap()
            .contains(&repeated));
        // The same hash of another kind is another key.
        assert_eq!(repeats.candidates(Kind::Student), Some(&[][..]));
    }

    #[test]
    fn a_million_distinct_keys_give_few_candidates() {
        let mut repeats = Repeats::new();
        for n in 0..1_000_000_i64 {
            repeats.stage(Kind::Enrolment, n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ n);
        }
        let false_positives = repeats.candidates(Kind::Enrolment).unwrap().len();
        assert!(false_positives < 500, "{false_positives}");
    }

    #[test]
    fn too_many_candidates_fall_back_to_the_whole_stage() {
        let mut repeats = Repeats::new();
        for _ in 0..=MAX_CANDIDATES + 1 {
            repeats.stage(Kind::Node, 42);
        }
        assert_eq!(repeats.candidates(Kind::Node), None);
        assert!(repeats.candidates(Kind::Edge).is_some());
    }
}
