//! What a model's features are measured against: their kinds and references (percentile edges
//! of numeric features, known categories), and how values map to reference bins.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::accum::{self};
use crate::ranks::Ranks;
use crate::tally::Tally;

/// How a feature is monitored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Numeric,
    Categorical,
}

/// Percentile edges, as `f32` when every edge is one exactly (references learnt here round
/// their edges so, on both sides: half the memory, the same bins), else as `f64` (a profile
/// file made before, or values beyond the `f32` range).
#[derive(Clone, Debug, PartialEq)]
pub enum Edges {
    Narrow(Box<[f32]>),
    Wide(Box<[f64]>),
}

impl Edges {
    pub fn new(edges: Vec<f64>) -> Self {
        #[allow(clippy::cast_possible_truncation)] // checked: kept only when exact
        let narrow: Option<Box<[f32]>> = edges
            .iter()
            .map(|&e| {
                let n = e as f32;
                (f64::from(n) == e).then_some(n)
            })
            .collect();
        match narrow {
            Some(n) => Edges::Narrow(n),
            None => Edges::Wide(edges.into_boxed_slice()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Edges::Narrow(e) => e.len(),
            Edges::Wide(e) => e.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> f64 {
        match self {
            Edges::Narrow(e) => f64::from(e[i]),
            Edges::Wide(e) => e[i],
        }
    }

    pub fn to_vec(&self) -> Vec<f64> {
        match self {
            Edges::Narrow(e) => e.iter().map(|&x| f64::from(x)).collect(),
            Edges::Wide(e) => e.to_vec(),
        }
    }

    /// The bin of `value`: how many edges are at most it (Python's `bisect_right`).
    pub fn bin_of(&self, value: f64) -> usize {
        match self {
            Edges::Narrow(e) => e.partition_point(|&edge| f64::from(edge) <= value),
            Edges::Wide(e) => e.partition_point(|&edge| edge <= value),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Edges::Narrow(e) => e.len() * 4,
            Edges::Wide(e) => e.len() * 8,
        }
    }
}

/// The reference of a numeric feature (percentile edges, counts, deciles, range, spread).
#[derive(Debug)]
pub struct NumericRef {
    pub edges: Edges,
    /// Reference values per fine bin: one more bin than edges.
    pub counts: Tally,
    /// The coarse bin (decile) of each fine bin.
    pub coarse_of: CoarseMap,
    pub minimum: f64,
    pub maximum: f64,
    pub std: f64,
    /// Each fine bin's mid-rank and normal score (None when the reference counted nothing).
    pub ranks: Option<Ranks>,
}

impl NumericRef {
    /// A reference from its parts; an error says which part does not fit the others.
    pub fn new(
        edges: Vec<f64>,
        counts: &[f64],
        coarse_of: &[u32],
        (minimum, maximum, std): (f64, f64, f64),
    ) -> Result<Self, &'static str> {
        let counts = Tally::from_f64s(counts)
            .ok_or("numeric reference: counts must be whole numbers from 0 to 4294967295")?;
        if counts.len() != edges.len() + 1 || coarse_of.len() != counts.len() {
            return Err("numeric reference: counts, edges and the coarse map do not agree");
        }
        let coarse_of = coarse_of
            .iter()
            .map(|&c| u8::try_from(c))
            .collect::<Result<Box<[u8]>, _>>()
            .map_err(|_| "numeric reference: more than 256 coarse bins")?;
        let coarse_of = CoarseMap::new(coarse_of);
        let ranks = Ranks::of_counts(&counts.f64s());
        Ok(Self {
            edges: Edges::new(edges),
            ranks,
            counts,
            coarse_of,
            minimum,
            maximum,
            std,
        })
    }

    /// Reference values per coarse bin, from the fine ones (`counts`, as floats).
    pub(crate) fn coarsen(&self, counts: &[f64]) -> Vec<f64> {
        let map = self.coarse_of.to_vec();
        let coarse = map.iter().max().map_or(1, |&c| usize::from(c) + 1);
        accum::coarsen(counts, &map, coarse)
    }

    /// Reference values per coarse bin.
    pub fn coarse_counts(&self) -> Vec<f64> {
        self.coarsen(&self.counts.f64s())
    }
}

/// Runs of at most this many coarse bins are kept inline.
const RUNS: usize = 16;

/// The coarse bin of each fine bin. Deciles are taken from the same sorted sample as the
/// percentiles, so fine bins map to coarse bins in order: the map is kept as where each coarse
/// bin ends (a few bytes in place, instead of a byte per fine bin on the heap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoarseMap {
    /// `ends[c]`: one past the last fine bin of coarse bin `c`, for the first `len` coarse bins.
    Runs { ends: [u16; RUNS], len: u8 },
    /// Any other map (a profile file may hold one): a byte per fine bin.
    Bytes(Box<[u8]>),
}

impl CoarseMap {
    /// The map of fine bin `i` to `coarse_of[i]`, in runs when it is in order.
    pub fn new(coarse_of: Box<[u8]>) -> Self {
        let ordered = coarse_of.windows(2).all(|w| w[0] <= w[1]);
        let coarse = coarse_of.last().map_or(0, |&c| usize::from(c) + 1);
        if !ordered || coarse > RUNS || coarse_of.len() > usize::from(u16::MAX) {
            return CoarseMap::Bytes(coarse_of);
        }
        let mut ends = [0u16; RUNS];
        for (c, end) in ends.iter_mut().enumerate().take(coarse) {
            *end = coarse_of.partition_point(|&v| usize::from(v) <= c) as u16;
        }
        CoarseMap::Runs {
            ends,
            len: coarse as u8,
        }
    }

    /// The coarse bin of each fine bin.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            CoarseMap::Runs { ends, len } => {
                let mut map = Vec::with_capacity(self.len());
                let mut start = 0;
                for (c, &end) in ends[..usize::from(*len)].iter().enumerate() {
                    map.extend(std::iter::repeat_n(c as u8, usize::from(end) - start));
                    start = usize::from(end);
                }
                map
            }
            CoarseMap::Bytes(map) => map.to_vec(),
        }
    }

    /// Fine bins mapped.
    pub fn len(&self) -> usize {
        match self {
            CoarseMap::Runs { ends, len } => usize::from(*len)
                .checked_sub(1)
                .map_or(0, |last| usize::from(ends[last])),
            CoarseMap::Bytes(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The reference of a categorical feature: top categories, the known ones, their counts.
#[derive(Debug)]
pub struct CategoricalRef {
    pub index: HashMap<String, usize>,
    pub known: HashSet<String>,
    pub counts: Vec<f64>,
}

/// A feature's reference, shared by every window opened under it.
#[derive(Clone, Debug)]
pub enum Reference {
    Numeric(Arc<NumericRef>),
    Categorical(Arc<CategoricalRef>),
}

#[cfg(test)]
mod coarse_map_tests {
    use super::CoarseMap;

    #[test]
    fn an_ordered_map_is_kept_as_runs_and_reads_back_the_same() {
        let map: Vec<u8> = vec![0, 0, 0, 2, 2, 3, 3, 3, 3];
        let coarse = CoarseMap::new(map.clone().into_boxed_slice());
        assert!(matches!(coarse, CoarseMap::Runs { len: 4, .. })); // coarse bin 1 is empty
        assert_eq!(coarse.to_vec(), map);
        assert_eq!(coarse.len(), 9);
        let deciles: Vec<u8> = (0..100).map(|i| (i / 10) as u8).collect();
        assert_eq!(CoarseMap::new(deciles.clone().into()).to_vec(), deciles);
        assert!(CoarseMap::new(Box::default()).is_empty());
    }

    #[test]
    fn a_map_out_of_order_or_too_wide_is_kept_byte_by_byte() {
        for map in [vec![1u8, 0, 2], (0..20).collect::<Vec<u8>>()] {
            let coarse = CoarseMap::new(map.clone().into_boxed_slice());
            assert!(matches!(coarse, CoarseMap::Bytes(_)));
            assert_eq!(coarse.to_vec(), map);
        }
    }
}
