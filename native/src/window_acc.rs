//! The accumulators of one open window: bins on the reference edges, categorical counts and
//! the data-quality counters of each feature, and the statistics of a closed window.

use std::sync::Arc;

use crate::accum::{self, NumericDrift, NumericReferenceView};
use crate::columns::{category_of, Binned, Cell, NumericColumn};
use crate::decode::Value;
use crate::features::{CategoricalRef, Kind, NumericRef, Reference};
use crate::pyrepr::float_repr;
use crate::stats;
use crate::tally::Tally;

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
    pub(crate) fn mark_non_finite(&mut self) {
        let counts = self.counts_mut();
        counts.missing = counts.missing.wrapping_sub(1);
        counts.non_finite += 1;
    }

    /// Count a run's values (`Missing` for absent) of this feature, or their column as
    /// `binned` already read when it was binned on this accumulator's own reference.
    pub(crate) fn add(&mut self, values: &[Cell<'_>], binned: Option<&Binned>) {
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
                        *out_of_range += accum::bin_into(
                            &column.values,
                            |v| r.edges.bin_of(v),
                            bins,
                            r.minimum,
                            r.maximum,
                        );
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
