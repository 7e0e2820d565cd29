//! The per-model state of the batch core: windows, accumulators, change detectors, warm-up.
//!
//! A [`ModelCore`] takes a model's decoded events in order and does everything that happens per
//! event: splitting them into runs that fall into the same windows, counting every run into its
//! windows (bins on the reference edges, categorical counts, data-quality counters, lags and
//! latencies), feeding the change detectors, and collecting the warm-up sample. It stops where
//! the Python side has to decide something before the next event may be counted: when a window
//! closes (the rules may start a new warm-up) and when a warm-up ends (the reference is learnt
//! from the sample). The outputs are the same for any batching: runs end where windows close,
//! where the warm-up ends and where the model version changes, exactly as event by event.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::accum::{self, NumericDrift, NumericReferenceView};
use crate::adwin::Adwin;
use crate::decode::{Prediction, Value};
use crate::interned::{shared, Pool};
use crate::joint::{Joint, JointRef};
use crate::mapped::Mapped;
use crate::pyrepr::float_repr;
use crate::ranks::Ranks;
use crate::sketch::LogHistogram;
use crate::stats;
use crate::tally::Tally;

const CLAMP: f64 = 1e9;

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
    fn coarsen(&self, counts: &[f64]) -> Vec<f64> {
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

/// Counters every feature accumulator keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub n: u64,
    pub missing: u64,
    pub non_finite: u64,
    pub invalid: u64,
}

/// One feature (or the prediction signal) in one window.
#[derive(Clone, Debug)]
pub enum Acc {
    Numeric {
        counts: Counts,
        bins: Tally,
        out_of_range: u64,
        reference: Option<Arc<NumericRef>>,
    },
    Categorical {
        counts: Counts,
        bins: Tally,
        unseen: u64,
        reference: Option<Arc<CategoricalRef>>,
    },
}

impl Acc {
    /// An accumulator of `kind`, binned on `reference` when it is of the same kind.
    pub fn new(kind: Kind, reference: Option<&Reference>) -> Self {
        match kind {
            Kind::Numeric => {
                let reference = match reference {
                    Some(Reference::Numeric(r)) => Some(Arc::clone(r)),
                    _ => None,
                };
                Acc::Numeric {
                    counts: Counts::default(),
                    bins: Tally::zeros(reference.as_ref().map_or(0, |r| r.counts.len())),
                    out_of_range: 0,
                    reference,
                }
            }
            Kind::Categorical => {
                let reference = match reference {
                    Some(Reference::Categorical(r)) => Some(Arc::clone(r)),
                    _ => None,
                };
                Acc::Categorical {
                    counts: Counts::default(),
                    bins: Tally::zeros(reference.as_ref().map_or(0, |r| r.counts.len() + 1)),
                    unseen: 0,
                    reference,
                }
            }
        }
    }

    pub fn counts(&self) -> &Counts {
        match self {
            Acc::Numeric { counts, .. } | Acc::Categorical { counts, .. } => counts,
        }
    }

    fn counts_mut(&mut self) -> &mut Counts {
        match self {
            Acc::Numeric { counts, .. } | Acc::Categorical { counts, .. } => counts,
        }
    }

    /// Re-file one missing value as non-finite (NaN or Infinity arrived as a missing value).
    fn mark_non_finite(&mut self) {
        let counts = self.counts_mut();
        counts.missing = counts.missing.wrapping_sub(1);
        counts.non_finite += 1;
    }

    /// Count a run's values (`Missing` for absent) of this feature, or their column as
    /// `binned` already read when it was binned on this accumulator's own reference.
    fn add(&mut self, values: &[Cell<'_>], binned: Option<&Binned>) {
        if let (Some(binned), Acc::Numeric { reference, .. }) = (binned, &*self) {
            if reference
                .as_ref()
                .is_some_and(|r| Arc::ptr_eq(r, &binned.reference))
            {
                return self.add_binned(binned);
            }
        }
        match self {
            Acc::Numeric {
                counts,
                bins,
                out_of_range,
                reference,
            } => {
                let column = NumericColumn::of(values);
                counts.missing += column.missing;
                counts.non_finite += column.non_finite;
                counts.invalid += column.invalid;
                counts.n += column.values.len() as u64;
                if let Some(r) = reference {
                    if !column.values.is_empty() {
                        *out_of_range +=
                            accum::bin_into(&column.values, &r.edges, bins, r.minimum, r.maximum);
                    }
                }
            }
            Acc::Categorical {
                counts,
                bins,
                unseen,
                reference,
            } => {
                for cell in values {
                    let category = match cell {
                        Cell::Missing | Cell::Value(Value::Null) => {
                            counts.missing += 1;
                            continue;
                        }
                        Cell::Value(value) => category_of(value),
                        Cell::Score(None) => {
                            counts.missing += 1;
                            continue;
                        }
                        Cell::Score(Some(x)) => Some(std::borrow::Cow::Owned(float_repr(*x))),
                    };
                    let Some(category) = category else {
                        counts.invalid += 1;
                        continue;
                    };
                    counts.n += 1;
                    let Some(r) = reference else { continue };
                    let position = match r.index.get(category.as_ref()) {
                        Some(&p) => p,
                        None if r.known.contains(category.as_ref()) => bins.len() - 2,
                        None => {
                            *unseen += 1;
                            bins.len() - 1
                        }
                    };
                    bins.increment(position);
                }
            }
        }
    }

    /// [`Acc::add`] of a column binned on this numeric accumulator's reference.
    fn add_binned(&mut self, binned: &Binned) {
        let Acc::Numeric {
            counts,
            bins,
            out_of_range,
            reference: Some(r),
        } = self
        else {
            return;
        };
        let column = &binned.column;
        counts.missing += column.missing;
        counts.non_finite += column.non_finite;
        counts.invalid += column.invalid;
        counts.n += column.values.len() as u64;
        for (&value, &bin) in column.values.iter().zip(&binned.bins) {
            bins.increment(bin);
            if value < r.minimum || value > r.maximum {
                *out_of_range += 1;
            }
        }
    }

    /// Drift statistics against the reference; `None` without a reference or values.
    pub fn drift(&self) -> Option<Drift> {
        match self {
            Acc::Numeric {
                counts,
                bins,
                reference: Some(r),
                ..
            } if counts.n > 0 => {
                let reference = r.counts.f64s();
                Some(Drift::Numeric(accum::numeric_drift(
                    bins,
                    &NumericReferenceView {
                        coarse_counts: &r.coarsen(&reference),
                        counts: &reference,
                        coarse_of: &r.coarse_of.to_vec(),
                        edges: &r.edges.to_vec(),
                        std: r.std,
                    },
                )))
            }
            Acc::Categorical {
                counts,
                bins,
                unseen,
                reference: Some(r),
            } if counts.n > 0 => {
                let mut expected = r.counts.clone();
                expected.push(0.0);
                let current = bins.f64s();
                let (chi, chi_p) = stats::chi_square(&expected, &current);
                let finite = |x: f64| x.is_finite().then_some(x);
                Some(Drift::Categorical {
                    psi: finite(stats::psi(&expected, &current)),
                    jensen_shannon: finite(stats::jensen_shannon(&expected, &current)),
                    chi_square: finite(chi),
                    chi_square_pvalue: finite(chi_p),
                    unseen_share: finite(*unseen as f64 / counts.n as f64),
                })
            }
            _ => None,
        }
    }

    /// Data-quality rates over a window of `events` events (`None` when empty).
    pub fn quality(&self, events: u64) -> Option<Quality> {
        if events == 0 {
            return None;
        }
        let e = events as f64;
        let counts = self.counts();
        let extra = match self {
            Acc::Numeric {
                out_of_range,
                reference,
                ..
            } => reference.as_ref().map(|_| *out_of_range as f64 / e),
            Acc::Categorical {
                unseen, reference, ..
            } => reference.as_ref().map(|_| *unseen as f64 / e),
        };
        Some(Quality {
            missing_rate: counts.missing as f64 / e,
            non_finite_rate: counts.non_finite as f64 / e,
            type_mismatch_rate: counts.invalid as f64 / e,
            extra,
            numeric: matches!(self, Acc::Numeric { .. }),
        })
    }
}

/// A feature's distribution in a closed window beside its reference's, for a drill-down.
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// The coarse bins (deciles) of a numeric feature: `edges` are their inner edges (bin `i`
    /// runs from `edges[i - 1]` to `edges[i]`), so there is one bin more than edges.
    Numeric {
        edges: Vec<f64>,
        reference: Vec<f64>,
        window: Vec<u64>,
    },
    /// The reference's top categories, then its rarer known ones pooled, then unseen ones.
    Categorical {
        categories: Vec<String>,
        reference: Vec<f64>,
        window: Vec<u64>,
    },
}

/// Label of the pooled rarer categories the reference knows (as `reference.OTHER`).
pub const OTHER: &str = "__other__";
/// Label of the categories the reference never saw.
pub const UNSEEN: &str = "__unseen__";

/// `counts` as shares of their sum (all zero when the sum is).
fn shares(counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| if total > 0.0 { c / total } else { 0.0 })
        .collect()
}

impl Acc {
    /// The window's distribution on the reference's bins (reference as shares, window as
    /// counts); `None` without a reference.
    pub fn distribution(&self) -> Option<Distribution> {
        match self {
            Acc::Numeric {
                bins,
                reference: Some(r),
                ..
            } => {
                let map = r.coarse_of.to_vec();
                let edges = (1..map.len())
                    .filter(|&b| map[b] != map[b - 1])
                    .map(|b| r.edges.get(b - 1))
                    .collect();
                let window = r.coarsen(&bins.f64s()).iter().map(|&c| c as u64).collect();
                Some(Distribution::Numeric {
                    edges,
                    reference: shares(&r.coarse_counts()),
                    window,
                })
            }
            Acc::Categorical {
                bins,
                reference: Some(r),
                ..
            } => {
                let mut categories = vec![String::new(); r.counts.len().saturating_sub(1)];
                for (name, &position) in &r.index {
                    if let Some(slot) = categories.get_mut(position) {
                        slot.clone_from(name);
                    }
                }
                categories.extend([OTHER.to_string(), UNSEEN.to_string()]);
                let mut reference = r.counts.clone();
                reference.push(0.0);
                Some(Distribution::Categorical {
                    categories,
                    reference: shares(&reference),
                    window: bins.counts().into_iter().map(u64::from).collect(),
                })
            }
            _ => None,
        }
    }
}

/// Drift statistics of one feature in a closed window.
#[derive(Clone, Debug, PartialEq)]
pub enum Drift {
    Numeric(NumericDrift),
    Categorical {
        psi: Option<f64>,
        jensen_shannon: Option<f64>,
        chi_square: Option<f64>,
        chi_square_pvalue: Option<f64>,
        unseen_share: Option<f64>,
    },
}

/// Data-quality rates of one feature in a closed window.
#[derive(Clone, Debug, PartialEq)]
pub struct Quality {
    pub missing_rate: f64,
    pub non_finite_rate: f64,
    pub type_mismatch_rate: f64,
    /// out-of-range rate (numeric) or unseen rate (categorical); None without a reference
    pub extra: Option<f64>,
    pub numeric: bool,
}

/// The category string of a value, as `reference.category_of` makes it.
pub(crate) fn category_of(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::Null => None,
        Value::Str(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Int(i) => Some(Cow::Owned(i.to_string())),
        Value::BigInt(digits) => Some(Cow::Borrowed(digits)),
        Value::Float(x) if x.is_finite() => Some(Cow::Owned(float_repr(*x))),
        Value::Float(_) => None,
    }
}

/// One event's value of a feature or signal, as a run sees it.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    /// The event does not have the feature.
    Missing,
    Value(&'a Value),
    /// A score (the prediction signal when it is the score).
    Score(Option<f64>),
}

/// A run's values of one numeric feature sorted out: finite numbers and their positions.
#[derive(Debug, Default)]
pub struct NumericColumn {
    pub values: Vec<f64>,
    pub positions: Vec<usize>,
    /// false for booleans (counted in a window, not fed to detectors)
    pub detectable: Vec<bool>,
    pub missing: u64,
    pub non_finite: u64,
    pub invalid: u64,
}

impl NumericColumn {
    pub fn of(cells: &[Cell<'_>]) -> Self {
        let mut column = Self {
            values: Vec::with_capacity(cells.len()),
            positions: Vec::with_capacity(cells.len()),
            detectable: Vec::with_capacity(cells.len()),
            ..Self::default()
        };
        for (i, cell) in cells.iter().enumerate() {
            let (number, detectable) = match cell {
                Cell::Missing | Cell::Value(Value::Null) | Cell::Score(None) => {
                    column.missing += 1;
                    continue;
                }
                Cell::Value(Value::Str(_)) => {
                    column.invalid += 1;
                    continue;
                }
                Cell::Value(Value::Bool(b)) => (f64::from(u8::from(*b)), false),
                Cell::Value(Value::Int(n)) => (*n as f64, true),
                Cell::Value(Value::BigInt(digits)) => (digits.parse().unwrap_or(f64::NAN), true),
                Cell::Value(Value::Float(x)) => (*x, true),
                Cell::Score(Some(x)) => (*x, true),
            };
            if !number.is_finite() {
                column.non_finite += 1;
                continue;
            }
            column.values.push(number);
            column.positions.push(i);
            column.detectable.push(detectable);
        }
        column
    }
}

/// The accumulators of one open window.
#[derive(Clone, Debug)]
pub struct Window {
    /// The monitored features when the window opened (`features` follows them).
    pub names: Arc<Vec<String>>,
    pub count: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub features: Vec<Acc>,
    pub prediction: Option<Acc>,
    pub latency: LogHistogram,
    pub lag: LogHistogram,
    /// Joint moments of the numeric features (when the model has a joint reference).
    pub joint: Option<Joint>,
}

/// Page-Hinkley with river's arithmetic and the parameters the Python side used
/// (min_instances 100, delta 0.05, threshold 50, alpha 1 - 1e-4, both directions).
#[derive(Clone, Debug, PartialEq)]
pub struct PageHinkley {
    pub n: f64,
    pub mean: f64,
    pub sum_increase: f64,
    pub sum_decrease: f64,
    pub min_increase: f64,
    pub max_decrease: f64,
    pub drift_detected: bool,
}

impl Default for PageHinkley {
    fn default() -> Self {
        Self {
            n: 0.0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: f64::INFINITY,
            max_decrease: -1.0,
            drift_detected: false,
        }
    }
}

impl PageHinkley {
    const MIN_INSTANCES: f64 = 100.0;
    const DELTA: f64 = 0.05;
    const THRESHOLD: f64 = 50.0;
    const ALPHA: f64 = 1.0 - 0.0001;

    pub fn update(&mut self, x: f64) -> bool {
        if self.drift_detected {
            *self = Self::default();
        }
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
        let deviation = x - self.mean;
        self.sum_increase = Self::ALPHA * self.sum_increase + deviation - Self::DELTA;
        self.sum_decrease = Self::ALPHA * self.sum_decrease + deviation + Self::DELTA;
        if self.sum_increase < self.min_increase {
            self.min_increase = self.sum_increase;
        }
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.n >= Self::MIN_INSTANCES {
            self.drift_detected = self.sum_increase - self.min_increase > Self::THRESHOLD
                || self.max_decrease - self.sum_decrease > Self::THRESHOLD;
        }
        self.drift_detected
    }
}

/// The change-detection algorithm of a [`Detector`].
#[derive(Clone, Debug)]
pub enum Algorithm {
    Adwin(Adwin),
    PageHinkley(PageHinkley),
}

/// A run's values of one numeric signal read once, for the window counts, the detectors and
/// the joint moments: the column and each value's bin among `reference`'s edges.
pub struct Binned {
    pub column: NumericColumn,
    pub bins: Vec<usize>,
    pub reference: Arc<NumericRef>,
}

impl Binned {
    fn of(cells: &[Cell<'_>], reference: &Arc<NumericRef>) -> Self {
        let column = NumericColumn::of(cells);
        let bins = column
            .values
            .iter()
            .map(|&v| reference.edges.bin_of(v))
            .collect();
        Self {
            column,
            bins,
            reference: Arc::clone(reference),
        }
    }

    /// The normal score of each value (see [`Ranks`]); None without ranks.
    fn scores(&self) -> Option<impl Iterator<Item = f64> + '_> {
        let ranks = self.reference.ranks.as_ref()?;
        Some(self.bins.iter().map(|&b| ranks.normal(b)))
    }
}

/// The [`Binned`] columns of one run: per feature slot, and of the prediction signal.
pub struct RunBins {
    pub features: Vec<Option<Binned>>,
    pub prediction: Option<Binned>,
}

/// A change detector fed standardised block means of one signal.
#[derive(Clone, Debug)]
pub struct Detector {
    pub algorithm: Algorithm,
    pub mean: f64,
    pub scale: f64,
    pub block: u32,
    pub total: f64,
    pub filled: u32,
    pub detections: u64,
}

impl Detector {
    /// `name`: "adwin" or "page_hinkley".
    pub fn new(name: &str, delta: f64, mean: f64, std: f64, block: u32) -> Option<Self> {
        let block = block.max(1);
        let algorithm = match name {
            "adwin" => Algorithm::Adwin(Adwin::new(delta, (32 / block).max(1))),
            "page_hinkley" => Algorithm::PageHinkley(PageHinkley::default()),
            _ => return None,
        };
        Some(Self {
            algorithm,
            mean,
            scale: if std > 0.0 { 1.0 / std } else { 1.0 },
            block,
            total: 0.0,
            filled: 0,
            detections: 0,
        })
    }

    /// Feed one value; true when a completed block makes the detector signal a change.
    pub fn update(&mut self, value: f64) -> bool {
        self.total += value;
        self.filled += 1;
        if self.filled < self.block {
            return false;
        }
        let mean = self.total / f64::from(self.filled);
        self.total = 0.0;
        self.filled = 0;
        let mut standardised = (mean - self.mean) * self.scale;
        if !standardised.is_finite() {
            if standardised.is_nan() {
                return false;
            }
            standardised = CLAMP.copysign(standardised);
        }
        let x = standardised.clamp(-CLAMP, CLAMP);
        let fired = match &mut self.algorithm {
            Algorithm::Adwin(adwin) => adwin.update(x),
            Algorithm::PageHinkley(ph) => ph.update(x),
        };
        if fired {
            self.detections += 1;
        }
        fired
    }
}

/// The detectors of one signal: a feature (`slot`) or the prediction signal (`None`).
#[derive(Clone, Debug)]
pub struct Signal {
    pub slot: Option<usize>,
    /// Boxed: a collected `Vec` of a filtered iterator would keep room for four.
    pub detectors: Box<[Detector]>,
}

/// What the prediction signal of a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalKind {
    Score,
    Prediction,
}

/// One warm-up column, as the Python warm-up keeps it: numbers (NaN = missing) until a value
/// of another type arrives, then the values themselves (earlier numbers kept as floats).
#[derive(Clone, Debug)]
pub enum WarmColumn {
    Numbers(Mapped<f64>),
    Values(Mapped<Value>),
}

impl WarmColumn {
    fn len(&self) -> usize {
        match self {
            WarmColumn::Numbers(v) => v.len(),
            WarmColumn::Values(v) => v.len(),
        }
    }

    fn pad(&mut self) {
        match self {
            WarmColumn::Numbers(v) => v.push(f64::NAN),
            WarmColumn::Values(v) => v.push(Value::Null),
        }
    }

    fn push(&mut self, value: &Value) {
        if let WarmColumn::Numbers(numbers) = self {
            match value {
                Value::Float(x) => return numbers.push(*x),
                Value::Int(i) => return numbers.push(*i as f64),
                Value::BigInt(d) => return numbers.push(d.parse().unwrap_or(f64::INFINITY)),
                Value::Null => return numbers.push(f64::NAN),
                Value::Str(_) | Value::Bool(_) => {
                    let mut values = Mapped::with_capacity(numbers.capacity());
                    for &x in numbers.iter() {
                        values.push(if x.is_nan() {
                            Value::Null
                        } else {
                            Value::Float(x)
                        });
                    }
                    *self = WarmColumn::Values(values);
                }
            }
        }
        if let WarmColumn::Values(values) = self {
            values.push(value.clone());
        }
    }
}

/// The first events of a model, kept column by column to learn its reference. The columns are
/// mapped memory (see [`Mapped`]): freed whole when the warm-up ends.
#[derive(Clone, Debug)]
pub struct Warmup {
    pub size: u64,
    pub count: u64,
    pub columns: Vec<(String, WarmColumn)>,
    pub scores: Mapped<f64>,
    pub predictions: Mapped<Value>,
}

impl Warmup {
    /// A warm-up of `size` events; `categorical` features keep their values exactly.
    pub fn new(size: u64, categorical: &[String]) -> Self {
        let size_ = size as usize;
        Self {
            size,
            count: 0,
            // Columns take their full size at once: no regrowth.
            columns: categorical
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        WarmColumn::Values(Mapped::with_capacity(size_)),
                    )
                })
                .collect(),
            scores: Mapped::with_capacity(size_),
            predictions: Mapped::with_capacity(size_),
        }
    }

    /// Keep one event; true when enough have been seen.
    fn add(&mut self, event: &Prediction) -> bool {
        let count = self.count as usize;
        for (name, value) in &event.features {
            let at = match self.columns.iter().position(|(n, _)| **n == **name) {
                Some(at) => at,
                None => {
                    let mut numbers = Mapped::with_capacity((self.size as usize).max(count + 1));
                    for _ in 0..count {
                        numbers.push(f64::NAN);
                    }
                    self.columns
                        .push((name.to_string(), WarmColumn::Numbers(numbers)));
                    self.columns.len() - 1
                }
            };
            self.columns[at].1.push(value);
        }
        self.count += 1;
        for (_, column) in &mut self.columns {
            if column.len() < count + 1 {
                column.pad();
            }
        }
        self.scores.push(event.score.unwrap_or(f64::NAN));
        self.predictions.push(event.prediction.clone());
        self.count >= self.size
    }
}

/// Count windows or event-time windows (tumbling or hopping), as `monitor.windows`.
#[derive(Clone, Debug)]
pub enum Windows {
    Count {
        size: u64,
        index: i64,
        count: u64,
        first: Option<i64>,
        last: Option<i64>,
    },
    Time {
        size: i64,
        step: i64,
        lateness: i64,
        max_time: Option<i64>,
        open: Vec<i64>,
    },
}

/// Identity and extent of a window (`end` exclusive for time windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub index: i64,
    pub start: i64,
    pub end: i64,
}

impl Windows {
    /// Keys of the still-open time windows the event belongs to (empty when it is late).
    pub fn time_open(&mut self, timestamp: i64) -> Vec<i64> {
        let Windows::Time {
            size,
            step,
            lateness,
            max_time,
            open,
        } = self
        else {
            return Vec::new();
        };
        if max_time.is_none_or(|m| timestamp > m) {
            *max_time = Some(timestamp);
        }
        let watermark = max_time.unwrap_or(timestamp) - *lateness;
        let mut starts = Vec::new();
        let mut start = timestamp - timestamp.rem_euclid(*step);
        while start > timestamp - *size {
            if start + *size > watermark {
                starts.push(start);
            }
            start -= *step;
        }
        starts.reverse();
        for &s in &starts {
            if !open.contains(&s) {
                open.push(s);
            }
        }
        starts
    }

    /// Windows that closed: the full count window, or the time windows the watermark passed.
    pub fn closed(&mut self) -> Vec<(i64, Bounds)> {
        match self {
            Windows::Count {
                size,
                index,
                count,
                first,
                last,
            } => {
                if *count < *size {
                    return Vec::new();
                }
                vec![Self::close_count(index, count, first, last)]
            }
            Windows::Time {
                size,
                step,
                lateness,
                max_time,
                open,
            } => {
                let Some(max_time) = *max_time else {
                    return Vec::new();
                };
                let watermark = max_time - *lateness;
                let mut ready: Vec<i64> = open
                    .iter()
                    .copied()
                    .filter(|s| s + *size <= watermark)
                    .collect();
                ready.sort_unstable();
                open.retain(|s| !ready.contains(s));
                ready
                    .into_iter()
                    .map(|s| (s, time_bounds(s, *size, *step)))
                    .collect()
            }
        }
    }

    /// Close every open window (end of a finite stream).
    pub fn flush(&mut self) -> Vec<(i64, Bounds)> {
        match self {
            Windows::Count {
                index,
                count,
                first,
                last,
                ..
            } => {
                if *count == 0 {
                    return Vec::new();
                }
                vec![Self::close_count(index, count, first, last)]
            }
            Windows::Time {
                size, step, open, ..
            } => {
                let mut all = std::mem::take(open);
                all.sort_unstable();
                all.into_iter()
                    .map(|s| (s, time_bounds(s, *size, *step)))
                    .collect()
            }
        }
    }

    /// Count windows: `events` more events, of times `first` to `last`.
    pub fn take(&mut self, events: u64, first_time: i64, last_time: i64) {
        if let Windows::Count {
            count, first, last, ..
        } = self
        {
            if first.is_none_or(|x| first_time < x) {
                *first = Some(first_time);
            }
            if last.is_none_or(|x| last_time > x) {
                *last = Some(last_time);
            }
            *count += events;
        }
    }

    fn close_count(
        index: &mut i64,
        count: &mut u64,
        first: &mut Option<i64>,
        last: &mut Option<i64>,
    ) -> (i64, Bounds) {
        let bounds = Bounds {
            index: *index,
            start: first.unwrap_or(0),
            end: last.unwrap_or(0),
        };
        let key = *index;
        *index += 1;
        *count = 0;
        *first = None;
        *last = None;
        (key, bounds)
    }
}

/// The bounds of the time window starting at `start`.
fn time_bounds(start: i64, size: i64, step: i64) -> Bounds {
    Bounds {
        index: start.div_euclid(step),
        start,
        end: start + size,
    }
}

/// A detector signal at an event of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Index of the event in the run.
    pub position: usize,
    /// Order of the (signal, detector) pair among the model's detectors.
    pub order: usize,
    pub detector: usize,
    /// The detector's detections so far, this one included.
    pub detections: u64,
}

/// The standardised rows of a run's complete events (all joint features present), their
/// positions in the run, and the row width (None without a joint reference).
#[derive(Default)]
struct JointRows {
    values: Vec<f64>,
    width: Option<usize>,
    positions: Vec<usize>,
}

/// What the Python side needs of one run.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// Indices of the run's events in the model's events of this batch.
    pub start: usize,
    pub len: usize,
    pub keys: Vec<i64>,
    /// (count, first event time) of each window in `keys` before the run.
    pub before: Vec<(u64, Option<i64>)>,
    pub hits: Vec<Hit>,
    /// Where the model version changed in the run: (index in the run, version from there on),
    /// the first entry at index 0 (the version the run started with); empty without a change.
    pub versions: Vec<(usize, Option<String>)>,
    /// The last open window after the run, with its count and first time then.
    pub last_open: Option<(i64, u64, Option<i64>)>,
}

/// Where a step stopped.
#[derive(Debug)]
pub enum Pause {
    /// Window `key` closed: its accumulators, for the summary and the rules.
    Close {
        key: i64,
        bounds: Bounds,
        window: Box<Window>,
        late: u64,
    },
    /// The warm-up is complete: its sample, to learn the reference from.
    Warmup(Box<Warmup>),
    /// Every event of the batch is counted.
    Done,
}

/// The configuration a model core needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub warmup_events: u64,
    /// Features declared categorical, in the order the Python side lists them.
    pub categorical: Vec<String>,
    /// Detector names per signal ("adwin", "page_hinkley"), in order.
    pub detector_names: Vec<String>,
    pub detector_delta: f64,
    pub detector_block: u32,
}

impl Config {
    /// The configured detectors of one signal, standardising with `mean` and `std`.
    fn detectors(&self, mean: f64, std: f64) -> Box<[Detector]> {
        self.detector_names
            .iter()
            .filter_map(|name| {
                Detector::new(name, self.detector_delta, mean, std, self.detector_block)
            })
            .collect()
    }
}

/// The per-event state of one model.
#[derive(Clone, Debug)]
pub struct ModelCore {
    pub config: Config,
    pub windows: Windows,
    /// The kinds of the monitored features, named in order by `names`.
    pub kinds: Vec<Kind>,
    pub names: Arc<Vec<String>>,
    /// The reference of each feature (when learnt), and of the prediction signal.
    pub references: Vec<Option<Reference>>,
    pub prediction_ref: Option<(Kind, Reference)>,
    /// How events are standardised for the joint moments (multivariate drift), when on.
    pub joint_ref: Option<JointRef>,
    /// Detectors on each complete event's reconstruction error (with a joint reference); their
    /// signals come after the other signals' (`Hit::order`).
    pub joint_detectors: Box<[Detector]>,
    /// The first event (standardised) of a pair the joint detectors wait to complete.
    pub joint_half: Option<Vec<f64>>,
    pub signal: Option<SignalKind>,
    pub signals: Vec<Signal>,
    pub warmup: Option<Warmup>,
    /// Open windows in the order they opened.
    pub open: Vec<(i64, Window)>,
    pub late: u64,
    pub max_time: Option<i64>,
    pub events: u64,
    pub model_version: Option<String>,
    /// Closes found but not yet handed over (after a warm-up pause).
    pub pending: VecDeque<(i64, Bounds)>,
    /// Progress through the current batch: index of the next event of this model.
    pub cursor: usize,
    /// Event-time path: the run being built (start index) and its keys.
    pub run_start: usize,
    pub run_keys: Vec<i64>,
    pub run_lags: Vec<f64>,
}

/// Feature lists in use, so that models monitoring the same features (a fleet of models of
/// one schema) share one list.
static FEATURE_LISTS: Mutex<Pool<Vec<String>>> = Mutex::new(Pool::new());

/// The shared list of these feature names (made when no model holds one).
pub fn feature_list(names: Vec<String>) -> Arc<Vec<String>> {
    shared(&FEATURE_LISTS, names)
}

/// What the allocator adds to each allocation (its header, rounded), for [`ModelCore::footprint`].
const ALLOCATION: usize = 16;

fn boxed(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes + ALLOCATION
    }
}

fn reference_bytes(reference: &Reference) -> (usize, usize) {
    match reference {
        Reference::Numeric(r) => (
            boxed(r.edges.heap_bytes()),
            boxed(size_of::<NumericRef>())
                + boxed(r.counts.heap_bytes())
                + r.ranks
                    .as_ref()
                    .map_or(0, |ranks| boxed(ranks.heap_bytes())),
        ),
        Reference::Categorical(r) => {
            let strings: usize = r.known.iter().map(|k| boxed(k.len())).sum::<usize>()
                + r.index.keys().map(|k| boxed(k.len())).sum::<usize>();
            let tables = (r.index.capacity() + r.known.capacity()) * (size_of::<String>() + 9)
                + r.counts.capacity() * 8;
            (0, boxed(size_of::<CategoricalRef>()) + strings + tables)
        }
    }
}

fn acc_bytes(acc: &Acc) -> usize {
    match acc {
        Acc::Numeric { bins, .. } | Acc::Categorical { bins, .. } => boxed(bins.heap_bytes()),
    }
}

impl ModelCore {
    /// Approximate bytes of this model's state, by part: what the memory benchmark breaks
    /// down. Shared parts (references held by windows, names) count once.
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        let (mut edges, mut references) = (0, 0);
        for reference in self
            .references
            .iter()
            .flatten()
            .chain(self.prediction_ref.iter().map(|(_, r)| r))
        {
            let (e, r) = reference_bytes(reference);
            edges += e;
            references += r;
        }
        let mut detectors = boxed(self.signals.capacity() * size_of::<Signal>());
        let all = self.signals.iter().map(|s| &s.detectors);
        for group in all.chain(std::iter::once(&self.joint_detectors)) {
            detectors += boxed(group.len() * size_of::<Detector>());
            for detector in group.iter() {
                if let Algorithm::Adwin(adwin) = &detector.algorithm {
                    detectors += adwin.heap_bytes() + 2 * ALLOCATION;
                }
            }
        }
        let mut windows = boxed(self.open.capacity() * size_of::<(i64, Window)>());
        let mut sketches = 0;
        let mut joint = self.joint_ref.as_ref().map_or(0, |r| {
            boxed(r.slots.capacity() * 4)
                + boxed(r.mean.capacity() * 8)
                + boxed(r.inv_sd.capacity() * 8)
                + boxed(r.band.discarded.capacity() * 8)
                + boxed(r.band.correlations.capacity() * 4)
        }) + self
            .joint_half
            .as_ref()
            .map_or(0, |h| boxed(h.capacity() * 8));
        for (_, window) in &self.open {
            joint += window.joint.as_ref().map_or(0, |j| {
                boxed(j.sums.capacity() * 8) + boxed(j.cross.capacity() * 8)
            });
            windows += boxed(window.features.capacity() * size_of::<Acc>());
            windows += window
                .features
                .iter()
                .chain(window.prediction.iter())
                .map(acc_bytes)
                .sum::<usize>();
            sketches += boxed(window.latency.heap_bytes()) + boxed(window.lag.heap_bytes());
        }
        // A shared feature list counts a share to each holder (models and their open windows).
        let names = (self.names.iter().map(|n| boxed(n.len())).sum::<usize>()
            + boxed(self.names.capacity() * size_of::<String>()))
            / Arc::strong_count(&self.names).max(1);
        let other = size_of::<Self>()
            + ALLOCATION
            + boxed(self.references.capacity() * size_of::<Option<Reference>>())
            + boxed(self.kinds.capacity())
            + boxed(self.pending.capacity() * size_of::<(i64, Bounds)>())
            + boxed(self.run_keys.capacity() * 8)
            + boxed(self.run_lags.capacity() * 8)
            + self
                .config
                .categorical
                .iter()
                .chain(&self.config.detector_names)
                .map(|n| boxed(n.len()))
                .sum::<usize>();
        vec![
            ("edges", edges),
            ("references", references),
            ("detectors", detectors),
            ("windows", windows),
            ("sketches", sketches),
            ("joint", joint),
            ("names", names),
            ("other", other),
        ]
    }
}

impl ModelCore {
    /// A core counting into `windows` (fresh or restored), monitoring `types`.
    pub fn new(config: Config, windows: Windows, types: Vec<(String, Kind)>) -> Self {
        let warmup = None;
        let references = vec![None; types.len()];
        let (names, kinds) = types.into_iter().unzip();
        let names = feature_list(names);
        Self {
            names,
            windows,
            config,
            kinds,
            references,
            prediction_ref: None,
            joint_ref: None,
            joint_detectors: Box::new([]),
            joint_half: None,
            signal: None,
            signals: Vec::new(),
            warmup,
            open: Vec::new(),
            late: 0,
            max_time: None,
            events: 0,
            model_version: None,
            pending: VecDeque::new(),
            cursor: 0,
            run_start: 0,
            run_keys: Vec::new(),
            run_lags: Vec::new(),
        }
    }

    /// Use a learnt or loaded reference: the monitored features and kinds, each feature's
    /// reference, the prediction signal and its reference, and the signals watched by change
    /// detectors (features with a numeric reference in order by slot, then the prediction
    /// signal as None). Detectors see each value's normal score in the signal's reference,
    /// standardised with the reference's own mean and spread of them: under no change their
    /// input has the same distribution whatever the feature's shape, and for a normal feature
    /// it is nearly the standardised value itself.
    pub fn set_reference(
        &mut self,
        types: Vec<(String, Kind)>,
        references: Vec<Option<Reference>>,
        signal: SignalKind,
        prediction_ref: Option<(Kind, Reference)>,
        detectors: Vec<Option<usize>>,
    ) {
        let (names, kinds) = types.into_iter().unzip();
        self.names = feature_list(names);
        self.kinds = kinds;
        self.references = references;
        self.signal = Some(signal);
        self.prediction_ref = prediction_ref;
        let signals = detectors
            .into_iter()
            .map(|slot| {
                let (mean, variance) = self
                    .numeric_reference(slot)
                    .and_then(|r| r.ranks.as_ref())
                    .map_or((0.0, 0.0), |r| (r.normal_mean, r.normal_variance));
                Signal {
                    slot,
                    detectors: self.config.detectors(mean, variance.sqrt()),
                }
            })
            .collect();
        self.signals = signals;
    }

    /// The numeric reference of a feature slot, or of the prediction signal (None).
    fn numeric_reference(&self, slot: Option<usize>) -> Option<&Arc<NumericRef>> {
        let reference = match slot {
            Some(slot) => self.references.get(slot)?.as_ref(),
            None => self.prediction_ref.as_ref().map(|(_, r)| r),
        };
        match reference? {
            Reference::Numeric(r) => Some(r),
            Reference::Categorical(_) => None,
        }
    }

    /// Start a new warm-up (re-baselining after a resolved drift incident).
    pub fn restart_warmup(&mut self) {
        if self.warmup.is_none() {
            self.warmup = Some(Warmup::new(
                self.config.warmup_events,
                &self.config.categorical,
            ));
        }
    }

    fn new_window(&self) -> Window {
        let features = self
            .kinds
            .iter()
            .zip(&self.references)
            .map(|(kind, reference)| Acc::new(*kind, reference.as_ref()))
            .collect();
        let prediction = match (&self.signal, &self.prediction_ref) {
            (Some(_), Some((kind, reference))) => Some(Acc::new(*kind, Some(reference))),
            _ => None,
        };
        Window {
            names: Arc::clone(&self.names),
            count: 0,
            first: None,
            last: None,
            features,
            prediction,
            latency: LogHistogram::default(),
            lag: LogHistogram::default(),
            joint: self.joint_ref.as_ref().map(|r| Joint::new(r.len())),
        }
    }

    /// Count joint moments with `reference` in windows opened from now on (None: stop), and
    /// watch each event's reconstruction error with the configured detectors (as its normal
    /// score among the held-out half's errors, so its skew makes no false detection).
    pub fn set_joint(&mut self, reference: Option<JointRef>) {
        self.joint_detectors = match &reference {
            None => Box::new([]),
            Some(r) => {
                let ranks = &r.error_ranks;
                self.config
                    .detectors(ranks.normal_mean, ranks.normal_variance.sqrt())
            }
        };
        self.joint_ref = reference;
        self.joint_half = None;
    }

    /// Start a batch: `events` are this model's events of the batch, in order.
    pub fn begin(&mut self) {
        self.cursor = 0;
        self.run_start = 0;
        self.run_keys.clear();
        self.run_lags.clear();
    }

    /// Count events from the cursor until a pause; the runs counted are appended to `runs`.
    pub fn step(&mut self, events: &[&Prediction], runs: &mut Vec<RunRecord>) -> Pause {
        if let Some((key, bounds)) = self.pending.pop_front() {
            return self.close(key, bounds);
        }
        if matches!(self.windows, Windows::Count { .. }) {
            self.step_counted(events, runs)
        } else {
            self.step_timed(events, runs)
        }
    }

    fn step_counted(&mut self, events: &[&Prediction], runs: &mut Vec<RunRecord>) -> Pause {
        while self.cursor < events.len() {
            let Windows::Count { size, count, .. } = self.windows else {
                unreachable!("count windows")
            };
            let mut room = size - count;
            if let Some(w) = &self.warmup {
                room = room.min(w.size - w.count);
            }
            let start = self.cursor;
            let end = (start + room.max(1) as usize).min(events.len());
            self.cursor = end;
            self.events += (end - start) as u64;
            let chunk = &events[start..end];
            let mut latest = self.max_time;
            let lags: Vec<f64> = chunk
                .iter()
                .map(|e| {
                    let lag = match latest {
                        Some(m) if m > e.timestamp => (m - e.timestamp) as f64,
                        _ => 0.0,
                    };
                    latest = Some(latest.map_or(e.timestamp, |m| m.max(e.timestamp)));
                    lag
                })
                .collect();
            let first = chunk.iter().map(|e| e.timestamp).min().unwrap_or(0);
            let last = chunk.iter().map(|e| e.timestamp).max().unwrap_or(0);
            self.max_time = Some(self.max_time.map_or(last, |m| m.max(last)));
            self.windows.take(chunk.len() as u64, first, last);
            let Windows::Count { index: key, .. } = self.windows else {
                unreachable!("count windows")
            };
            let warmed = self.apply(chunk, start, &[key], &lags, runs);
            self.pending.extend(self.windows.closed());
            if warmed {
                return Pause::Warmup(Box::new(self.warmup.take().expect("a warm-up ended")));
            }
            if let Some((key, bounds)) = self.pending.pop_front() {
                return self.close(key, bounds);
            }
        }
        Pause::Done
    }

    fn step_timed(&mut self, events: &[&Prediction], runs: &mut Vec<RunRecord>) -> Pause {
        while self.cursor < events.len() {
            let i = self.cursor;
            let event = events[i];
            self.events += 1;
            let t = event.timestamp;
            let lag = match self.max_time {
                Some(m) if t <= m => (m - t) as f64,
                _ => {
                    self.max_time = Some(t);
                    0.0
                }
            };
            let keys = self.windows.time_open(t);
            if keys.is_empty() {
                self.late += 1;
            }
            if i > self.run_start && keys != self.run_keys {
                self.flush_run(events, i, runs);
            }
            self.run_lags.push(lag);
            self.run_keys = keys;
            self.cursor = i + 1;
            let closed = self.windows.closed();
            let filling = self
                .warmup
                .as_ref()
                .is_some_and(|w| w.count + (self.cursor - self.run_start) as u64 >= w.size);
            if !closed.is_empty() || filling {
                let warmed = self.flush_run(events, self.cursor, runs);
                self.pending.extend(closed);
                if warmed {
                    return Pause::Warmup(Box::new(self.warmup.take().expect("a warm-up ended")));
                }
                if let Some((key, bounds)) = self.pending.pop_front() {
                    return self.close(key, bounds);
                }
            }
        }
        self.flush_run(events, events.len(), runs);
        if let Some(w) = self.warmup.take() {
            if w.count >= w.size {
                return Pause::Warmup(Box::new(w));
            }
            self.warmup = Some(w);
        }
        Pause::Done
    }

    /// Apply the event-time run `run_start..end`; true when it completed the warm-up.
    fn flush_run(&mut self, events: &[&Prediction], end: usize, runs: &mut Vec<RunRecord>) -> bool {
        let start = self.run_start;
        self.run_start = end;
        if end <= start {
            return false;
        }
        let keys = std::mem::take(&mut self.run_keys);
        let lags = std::mem::take(&mut self.run_lags);
        self.apply(&events[start..end], start, &keys, &lags, runs)
    }

    /// The standardised rows of the run's events whose joint features are all numbers, one
    /// after another, and the row width (None without a joint reference).
    #[allow(clippy::needless_range_loop)] // `event` indexes the inner lists of `slots`
    fn joint_rows(&self, binned: &RunBins, events: usize) -> JointRows {
        let Some(reference) = &self.joint_ref else {
            return JointRows::default();
        };
        let width = reference.len();
        // each joint feature's normal score per event (NaN: not a number there)
        let mut scores = Vec::with_capacity(width);
        for &slot in &reference.slots {
            let Some(Some(feature)) = binned.features.get(slot as usize) else {
                return JointRows::default(); // not the features it was made for
            };
            let mut dense = vec![f64::NAN; events];
            if let Some(values) = feature.scores() {
                let column = &feature.column;
                for ((score, &at), &number) in values.zip(&column.positions).zip(&column.detectable)
                {
                    if number {
                        dense[at] = score; // booleans are not numbers to the joint moments
                    }
                }
            }
            scores.push(dense);
        }
        let mut rows = vec![0.0; events * width];
        let mut positions = Vec::with_capacity(events);
        for event in 0..events {
            let kept = positions.len();
            let row = &mut rows[kept * width..(kept + 1) * width];
            if reference.standardise_scores(|i| scores[i][event], row) {
                positions.push(event);
            }
        }
        rows.truncate(positions.len() * width);
        JointRows {
            values: rows,
            width: Some(width),
            positions,
        }
    }

    /// Feed the joint detectors the reconstruction error of each pair of complete events
    /// (taken in turn, not overlapping): the error of their difference over sqrt 2, which has
    /// the events' covariance (so the reference's error band) but not their mean, so a shift
    /// of one feature's mean, which that feature's detectors see, is left out. Their signals,
    /// at the second event of the pair.
    fn joint_detections(&mut self, rows: &JointRows, hits: &mut Vec<Hit>) {
        let (Some(reference), Some(width)) = (&self.joint_ref, rows.width) else {
            return;
        };
        let per_signal = self.config.detector_names.len();
        let base = self.signals.len() * per_signal;
        for (row, &position) in rows.values.chunks_exact(width).zip(&rows.positions) {
            let Some(first) = self.joint_half.take() else {
                self.joint_half = Some(row.to_vec());
                continue;
            };
            let difference: Vec<f64> = first
                .iter()
                .zip(row)
                .map(|(a, b)| (a - b) * std::f64::consts::FRAC_1_SQRT_2)
                .collect();
            let error = reference.error_score(reference.error_of(&difference));
            for (d, detector) in self.joint_detectors.iter_mut().enumerate() {
                if detector.update(error) {
                    hits.push(Hit {
                        position,
                        order: base + d,
                        detector: d,
                        detections: detector.detections,
                    });
                }
            }
        }
    }

    /// Count a run into windows `keys`, feed the detectors, keep warm-up events; true when the
    /// warm-up became complete with this run.
    fn apply(
        &mut self,
        run: &[&Prediction],
        start: usize,
        keys: &[i64],
        lags: &[f64],
        runs: &mut Vec<RunRecord>,
    ) -> bool {
        let versions = self.follow_versions(run);
        let slots = slots_of(&self.names, run);
        let binned = self.binned(run, &slots);
        let rows = self.joint_rows(&binned, run.len());
        let mut before = Vec::with_capacity(keys.len());
        for &key in keys {
            let at = match self.open.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    let window = self.new_window();
                    self.open.push((key, window));
                    self.open.len() - 1
                }
            };
            let window = &mut self.open[at].1;
            before.push((window.count, window.first));
            if Arc::ptr_eq(&window.names, &self.names) {
                add_run(window, run, &slots, self.signal, lags, Some(&binned));
                if let (Some(joint), Some(width)) = (&mut window.joint, rows.width) {
                    for z in rows.values.chunks_exact(width) {
                        joint.add(z);
                    }
                }
            } else {
                // opened under other features (before a reference was learnt)
                let own = slots_of(&window.names, run);
                add_run(window, run, &own, self.signal, lags, None);
            }
        }
        let mut hits = if !self.signals.is_empty() && !keys.is_empty() {
            self.detections(&binned)
        } else {
            Vec::new()
        };
        if !self.joint_detectors.is_empty() && !keys.is_empty() {
            self.joint_detections(&rows, &mut hits);
        }
        let last_open = self.open.last().map(|(k, w)| (*k, w.count, w.first));
        runs.push(RunRecord {
            start,
            len: run.len(),
            keys: keys.to_vec(),
            before,
            hits,
            versions,
            last_open,
        });
        if let Some(warmup) = &mut self.warmup {
            for event in run {
                if warmup.add(event) {
                    return true;
                }
            }
        }
        false
    }

    /// Take the run's model versions: where it changed in the run (see [`RunRecord`]).
    fn follow_versions(&mut self, run: &[&Prediction]) -> Vec<(usize, Option<String>)> {
        let mut versions = Vec::new();
        for (i, event) in run.iter().enumerate() {
            let Some(version) = &event.model_version else {
                continue;
            };
            if self.model_version.as_ref() == Some(version) {
                continue;
            }
            if versions.is_empty() && i > 0 {
                versions.push((0, self.model_version.clone()));
            }
            versions.push((i, Some(version.clone())));
            self.model_version = Some(version.clone());
        }
        versions
    }

    /// Feed each signal's detectors the normal scores of the run's values in its reference.
    fn detections(&mut self, binned: &RunBins) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut order = 0;
        for sig in &mut self.signals {
            let feature = match sig.slot {
                Some(slot) => binned.features.get(slot).and_then(Option::as_ref),
                None => binned.prediction.as_ref(),
            };
            let Some((feature, scores)) = feature.and_then(|f| Some((f, f.scores()?))) else {
                order += sig.detectors.len(); // nothing to rank on: no detection
                continue;
            };
            let scores: Vec<f64> = scores.collect();
            let column = &feature.column;
            for (d, detector) in sig.detectors.iter_mut().enumerate() {
                for ((&value, &position), &keep) in
                    scores.iter().zip(&column.positions).zip(&column.detectable)
                {
                    if keep && detector.update(value) {
                        hits.push(Hit {
                            position,
                            order,
                            detector: d,
                            detections: detector.detections,
                        });
                    }
                }
                order += 1;
            }
        }
        hits
    }

    /// The run's numeric signals read and binned once on their references (see [`Binned`]).
    fn binned(&self, run: &[&Prediction], slots: &[Vec<Cell<'_>>]) -> RunBins {
        let features = slots
            .iter()
            .enumerate()
            .map(|(slot, cells)| {
                let reference = self.numeric_reference(Some(slot))?;
                Some(Binned::of(cells, reference))
            })
            .collect();
        let prediction = self
            .numeric_reference(None)
            .map(|reference| Binned::of(&signal_cells(run, self.signal), reference));
        RunBins {
            features,
            prediction,
        }
    }

    fn close(&mut self, key: i64, bounds: Bounds) -> Pause {
        let window = match self.open.iter().position(|(k, _)| *k == key) {
            Some(at) => self.open.remove(at).1,
            None => self.new_window(),
        };
        let late = std::mem::take(&mut self.late);
        Pause::Close {
            key,
            bounds,
            window: Box::new(window),
            late,
        }
    }

    /// Close every open window (end of a finite stream): the closes, oldest first.
    pub fn flush(&mut self) -> Vec<(i64, Bounds)> {
        self.windows.flush()
    }

    /// Close what the model a segment belongs to closed (segments follow their model's
    /// windows): a count window's events so far, or the time windows the watermark of
    /// `max_time` passed (the model's newest event time, which may be ahead of the segment's).
    pub fn close_through(&mut self, max_time: Option<i64>) -> Vec<(i64, Bounds)> {
        match &mut self.windows {
            Windows::Count { .. } => self.windows.flush(),
            Windows::Time { max_time: own, .. } => {
                if let Some(t) = max_time {
                    if own.is_none_or(|m| t > m) {
                        *own = Some(t);
                    }
                }
                self.windows.closed()
            }
        }
    }

    /// The accumulators of closing window `key` (after [`ModelCore::flush`]).
    pub fn take_window(&mut self, key: i64) -> (Window, u64) {
        let window = match self.open.iter().position(|(k, _)| *k == key) {
            Some(at) => self.open.remove(at).1,
            None => self.new_window(),
        };
        (window, std::mem::take(&mut self.late))
    }
}

/// For each of `names`, each event's value (`Missing` when absent).
fn slots_of<'e>(names: &[String], run: &[&'e Prediction]) -> Vec<Vec<Cell<'e>>> {
    let mut slots: Vec<Vec<Cell<'e>>> = vec![Vec::with_capacity(run.len()); names.len()];
    // Where each feature was found in the last event: events of one producer list their
    // features in one order (not always the monitor's), so one comparison usually finds it.
    let mut hints: Vec<usize> = (0..names.len()).collect();
    for event in run {
        for (slot, name) in names.iter().enumerate() {
            let hint = hints[slot];
            let cell = match event.features.get(hint) {
                Some((n, v)) if **n == **name => Cell::Value(v),
                _ => match event.features.iter().position(|(n, _)| **n == **name) {
                    Some(at) => {
                        hints[slot] = at;
                        Cell::Value(&event.features[at].1)
                    }
                    None => Cell::Missing,
                },
            };
            slots[slot].push(cell);
        }
    }
    slots
}

/// The prediction signal's value of each event.
fn signal_cells<'e>(run: &[&'e Prediction], signal: Option<SignalKind>) -> Vec<Cell<'e>> {
    match signal {
        Some(SignalKind::Score) => run.iter().map(|e| Cell::Score(e.score)).collect(),
        _ => run.iter().map(|e| Cell::Value(&e.prediction)).collect(),
    }
}

fn add_run(
    window: &mut Window,
    run: &[&Prediction],
    slots: &[Vec<Cell<'_>>],
    signal: Option<SignalKind>,
    lags: &[f64],
    binned: Option<&RunBins>,
) {
    window.count += run.len() as u64;
    let first = run.iter().map(|e| e.timestamp).min();
    let last = run.iter().map(|e| e.timestamp).max();
    if let Some(first) = first {
        if window.first.is_none_or(|f| first < f) {
            window.first = Some(first);
        }
    }
    if let Some(last) = last {
        if window.last.is_none_or(|l| last > l) {
            window.last = Some(last);
        }
    }
    for (slot, (acc, cells)) in window.features.iter_mut().zip(slots).enumerate() {
        let column = binned.and_then(|b| b.features.get(slot)?.as_ref());
        acc.add(cells, column);
    }
    // Features that arrived as NaN or Infinity were read as missing: count them non-finite.
    for event in run {
        for name in &event.non_finite {
            if let Some(slot) = window.names.iter().position(|n| n == name) {
                window.features[slot].mark_non_finite();
            }
        }
    }
    if let Some(prediction) = &mut window.prediction {
        let column = binned.and_then(|b| b.prediction.as_ref());
        prediction.add(&signal_cells(run, signal), column);
    }
    for event in run {
        if let Some(latency) = event.latency_ms {
            window.latency.add(latency);
        }
    }
    for &lag in lags {
        window.lag.add(lag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_narrow_only_when_exact_and_bin_alike() {
        let exact = vec![-1.5, 0.0, 0.25, 3.0, 1_048_576.0];
        let narrow = Edges::new(exact.clone());
        assert!(matches!(narrow, Edges::Narrow(_)));
        assert_eq!(narrow.to_vec(), exact);
        assert_eq!(narrow.heap_bytes(), 20);
        let wide = Edges::Wide(exact.clone().into_boxed_slice());
        for value in [
            -2.0,
            -1.5,
            -0.1,
            0.0,
            0.2,
            0.25,
            2.9,
            3.0,
            1e30,
            1e31,
            f64::MAX,
        ] {
            assert_eq!(narrow.bin_of(value), wide.bin_of(value), "{value}");
        }
        // 0.1 is no f32, 1e300 is beyond its range: kept as f64
        assert!(matches!(Edges::new(vec![0.1, 0.5]), Edges::Wide(_)));
        assert!(matches!(Edges::new(vec![0.5, 1e300]), Edges::Wide(_)));
        let rounded = f64::from(0.1_f32);
        let edges = Edges::new(vec![rounded]);
        assert!(matches!(edges, Edges::Narrow(_)));
        assert_eq!((edges.bin_of(0.1), edges.bin_of(rounded)), (0, 1));
    }
    use crate::decode::{decode_prediction, Limits};

    #[test]
    fn models_of_the_same_features_share_one_list() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = feature_list(names(&["shared-a", "shared-b"]));
        let b = feature_list(names(&["shared-a", "shared-b"]));
        let other = feature_list(names(&["shared-b", "shared-a"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(*other, names(&["shared-b", "shared-a"]));
        drop((a, b));
        // no model holds the list any more: a new one is made, equal to the old
        let again = feature_list(names(&["shared-a", "shared-b"]));
        assert_eq!(Arc::strong_count(&again), 1);
    }

    fn event(i: i64, x: &str, version: &str) -> Prediction {
        let text = format!(
            r#"{{"event_id":"e{i}","model_id":"m","model_version":"{version}",
            "timestamp":{},"features":{{"x":{x},"c":"a"}},"prediction":1,"score":0.5}}"#,
            1_795_800_000_000 + i
        );
        decode_prediction(text.as_bytes(), &Limits::default()).expect("a valid event")
    }

    fn count_windows(size: u64) -> Windows {
        Windows::Count {
            size,
            index: 0,
            count: 0,
            first: None,
            last: None,
        }
    }

    fn config() -> Config {
        Config {
            warmup_events: 4,
            categorical: vec![],
            detector_names: vec!["adwin".into()],
            detector_delta: 0.002,
            detector_block: 1,
        }
    }

    #[test]
    fn numeric_cells_are_sorted_out_by_kind() {
        let values = [
            Value::Float(1.5),
            Value::Null,
            Value::Str("x".into()),
            Value::Bool(true),
            Value::Int(2),
            Value::BigInt("1".repeat(400)),
        ];
        let mut cells: Vec<Cell<'_>> = values.iter().map(Cell::Value).collect();
        cells.push(Cell::Missing);
        cells.push(Cell::Score(None));
        let column = NumericColumn::of(&cells);
        assert_eq!(column.values, vec![1.5, 1.0, 2.0]);
        assert_eq!(column.positions, vec![0, 3, 4]);
        assert_eq!(column.detectable, vec![true, false, true]);
        assert_eq!(
            (column.missing, column.invalid, column.non_finite),
            (3, 1, 1)
        );
    }

    #[test]
    fn categories_follow_the_reference() {
        let reference = Reference::Categorical(Arc::new(CategoricalRef {
            index: HashMap::from([("a".to_string(), 0), ("1".to_string(), 1)]),
            known: HashSet::from(["a".to_string(), "1".to_string(), "rare".to_string()]),
            counts: vec![5.0, 2.0, 1.0],
        }));
        let mut acc = Acc::new(Kind::Categorical, Some(&reference));
        let values = [
            Value::Str("a".into()),
            Value::Int(1),
            Value::Str("rare".into()),
            Value::Str("new".into()),
            Value::Null,
            Value::Float(2.5),
            Value::Bool(true),
        ];
        let cells: Vec<Cell<'_>> = values.iter().map(Cell::Value).collect();
        acc.add(&cells, None);
        let Acc::Categorical {
            counts,
            bins,
            unseen,
            ..
        } = &acc
        else {
            panic!("categorical")
        };
        // a, 1, other known (rare), never seen (new, 2.5, true)
        assert_eq!(bins.counts(), vec![1, 1, 1, 3]);
        assert_eq!((counts.n, counts.missing, *unseen), (6, 1, 3));
        let drift = acc.drift().expect("drift against the reference");
        assert!(matches!(drift, Drift::Categorical { psi: Some(p), .. } if p > 0.0));
        assert_eq!(
            acc.distribution(),
            Some(Distribution::Categorical {
                categories: vec!["a".into(), "1".into(), OTHER.into(), UNSEEN.into()],
                reference: vec![0.625, 0.25, 0.125, 0.0],
                window: vec![1, 1, 1, 3],
            })
        );
    }

    #[test]
    fn numeric_distribution_is_on_the_coarse_bins() {
        // Four fine bins (three edges) in two coarse bins: [.., 1) [1, 2) | [2, 3) [3, ..).
        let reference = NumericRef::new(
            vec![1.0, 2.0, 3.0],
            &[1.0, 3.0, 2.0, 2.0],
            &[0, 0, 1, 1],
            (0.0, 4.0, 1.0),
        )
        .expect("a consistent reference");
        let reference = Reference::Numeric(Arc::new(reference));
        let mut acc = Acc::new(Kind::Numeric, Some(&reference));
        assert_eq!(
            Acc::new(Kind::Numeric, None).distribution(),
            None,
            "no reference, nothing to compare with"
        );
        let values = [0.5, 1.5, 2.5, 2.6, 3.5, 3.9].map(Value::Float);
        let cells: Vec<Cell<'_>> = values.iter().map(Cell::Value).collect();
        acc.add(&cells, None);
        assert_eq!(
            acc.distribution(),
            Some(Distribution::Numeric {
                edges: vec![2.0],
                reference: vec![0.5, 0.5],
                window: vec![2, 4],
            })
        );
    }

    #[test]
    fn count_windows_pause_at_warmup_and_close_and_split_at_versions() {
        let mut core = ModelCore::new(
            config(),
            count_windows(3),
            vec![("x".into(), Kind::Numeric)],
        );
        core.restart_warmup();
        let events: Vec<Prediction> = (0..8)
            .map(|i| event(i, &format!("{}.5", i), if i < 5 { "v1" } else { "v2" }))
            .collect();
        let refs: Vec<&Prediction> = events.iter().collect();
        core.begin();
        let mut runs = Vec::new();
        // window 0 closes after 3 events
        assert!(matches!(
            core.step(&refs, &mut runs),
            Pause::Close { key: 0, .. }
        ));
        // the warm-up (4 events) ends inside window 1
        assert!(matches!(core.step(&refs, &mut runs), Pause::Warmup(_)));
        assert!(core.warmup.is_none());
        // the version changes at event 5, inside a run; window 1 closes at event 6
        assert!(matches!(
            core.step(&refs, &mut runs),
            Pause::Close { key: 1, .. }
        ));
        assert!(matches!(core.step(&refs, &mut runs), Pause::Done));
        let lengths: Vec<usize> = runs.iter().map(|r| r.len).collect();
        assert_eq!(lengths, vec![3, 1, 2, 2]);
        assert_eq!(
            runs[2].versions,
            vec![(0, Some("v1".to_string())), (1, Some("v2".to_string()))]
        );
        assert!(runs[3].versions.is_empty());
        assert_eq!(core.model_version.as_deref(), Some("v2"));
        assert_eq!(core.events, 8);
        let flushed = core.flush();
        assert_eq!(flushed.len(), 1);
        let (window, _) = core.take_window(flushed[0].0);
        assert_eq!(window.count, 2);
    }

    #[test]
    fn time_windows_hop_and_count_late_events() {
        let mut windows = Windows::Time {
            size: 10,
            step: 5,
            lateness: 0,
            max_time: None,
            open: Vec::new(),
        };
        assert_eq!(windows.time_open(12), vec![5, 10]);
        assert_eq!(windows.closed(), Vec::new());
        assert_eq!(windows.time_open(21), vec![15, 20]);
        let closed: Vec<i64> = windows.closed().iter().map(|(k, _)| *k).collect();
        assert_eq!(closed, vec![5, 10]);
        assert!(
            windows.time_open(3).is_empty(),
            "every window of t=3 has closed"
        );
    }
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
