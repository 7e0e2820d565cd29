//! Window accumulators of one numeric feature: values binned on the reference's percentile
//! edges, and the drift statistics of a window at its close.
//!
//! Bins are counts, so the accumulators of two disjoint parts of a window merge by adding.

use crate::stats;
use crate::tally::Tally;

/// Count finite `values` into `bins` (`bin_of` gives a value's bin: on percentile edges, bin i
/// holds values in [edges[i-1], edges[i]), as Python's `bisect_right`); returns how many fell
/// outside [low, high].
pub fn bin_into(
    values: &[f64],
    bin_of: impl Fn(f64) -> usize,
    bins: &mut Tally,
    low: f64,
    high: f64,
) -> u64 {
    let mut beyond = 0;
    for &value in values {
        bins.increment(bin_of(value));
        if value < low || value > high {
            beyond += 1;
        }
    }
    beyond
}

/// The drift statistics of one numeric feature in a window, `None` where they overflowed.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericDrift {
    pub psi: Option<f64>,
    pub jensen_shannon: Option<f64>,
    pub chi_square: Option<f64>,
    pub chi_square_pvalue: Option<f64>,
    pub ks: Option<f64>,
    pub ks_pvalue: Option<f64>,
    pub wasserstein: Option<f64>,
}

/// The reference side of a numeric feature, as drift needs it.
pub struct NumericReferenceView<'a> {
    pub counts: &'a [f64],
    pub coarse_of: &'a [u8],
    pub coarse_counts: &'a [f64],
    pub edges: &'a [f64],
    pub std: f64,
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Gap after each fine bin's upper edge (for Wasserstein), capped at the largest float.
pub fn widths(edges: &[f64], bins: usize) -> Vec<f64> {
    let mut gaps: Vec<f64> = edges
        .windows(2)
        .map(|w| (w[1] - w[0]).min(f64::MAX))
        .collect();
    gaps.resize(bins, 0.0);
    gaps
}

/// `fine` counts summed into the coarse bins `coarse_of` maps them to (`coarse` bins).
pub fn coarsen(fine: &[f64], coarse_of: &[u8], coarse: usize) -> Vec<f64> {
    let mut sums = vec![0.0; coarse];
    for (&count, &target) in fine.iter().zip(coarse_of) {
        if let Some(slot) = sums.get_mut(usize::from(target)) {
            *slot += count;
        }
    }
    sums
}

/// PSI, Jensen-Shannon and chi-square on the deciles; KS and Wasserstein on the percentiles.
pub fn numeric_drift(bins: &Tally, reference: &NumericReferenceView<'_>) -> NumericDrift {
    let fine = bins.f64s();
    let coarse = coarsen(&fine, reference.coarse_of, reference.coarse_counts.len());
    let (chi, chi_p) = stats::chi_square(reference.coarse_counts, &coarse);
    let (ks, ks_p) = stats::ks_binned(reference.counts, &fine);
    let gaps = widths(reference.edges, reference.counts.len());
    NumericDrift {
        psi: finite(stats::psi(reference.coarse_counts, &coarse)),
        jensen_shannon: finite(stats::jensen_shannon(reference.coarse_counts, &coarse)),
        chi_square: finite(chi),
        chi_square_pvalue: finite(chi_p),
        ks: finite(ks),
        ks_pvalue: finite(ks_p),
        wasserstein: finite(stats::wasserstein_binned(
            reference.counts,
            &fine,
            &gaps,
            reference.std,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_bisect_right_bins() {
        let edges = |v: f64| [0.0, 1.0, 2.0].partition_point(|&e| e <= v);
        let mut bins = Tally::zeros(4);
        let beyond = bin_into(
            &[-5.0, 0.0, 0.5, 1.0, 2.0, 7.0],
            edges,
            &mut bins,
            -1.0,
            3.0,
        );
        assert_eq!(bins.counts(), [1, 2, 1, 2]);
        assert_eq!(beyond, 2);
    }

    #[test]
    fn bins_of_two_parts_merge_into_the_bins_of_all() {
        let edges = |v: f64| [0.0, 1.0, 2.0].partition_point(|&e| e <= v);
        let values = [0.1, 1.5, -3.0, 2.5, 0.7, 1.0];
        let mut all = Tally::zeros(4);
        bin_into(&values, edges, &mut all, 0.0, 2.0);
        let (mut left, mut right) = (Tally::zeros(4), Tally::zeros(4));
        bin_into(&values[..2], edges, &mut left, 0.0, 2.0);
        bin_into(&values[2..], edges, &mut right, 0.0, 2.0);
        left.merge(&right);
        assert_eq!(left, all);
    }

    #[test]
    fn drift_of_the_reference_itself_is_nil() {
        let counts = [10.0, 20.0, 30.0, 40.0];
        let reference = NumericReferenceView {
            counts: &counts,
            coarse_of: &[0, 0, 1, 1],
            coarse_counts: &[30.0, 70.0],
            edges: &[0.0, 1.0, 2.0],
            std: 1.0,
        };
        assert_eq!(coarsen(&counts, &[0, 0, 1, 1], 2), vec![30.0, 70.0]);
        let drift = numeric_drift(&Tally::from_counts(&[10, 20, 30, 40]), &reference);
        assert_eq!(drift.psi, Some(0.0));
        assert_eq!(drift.ks, Some(0.0));
        assert_eq!(drift.wasserstein, Some(0.0));
        assert_eq!(widths(&[0.0, 1.0, 3.0], 4), vec![1.0, 2.0, 0.0, 0.0]);
    }
}
