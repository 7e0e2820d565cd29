//! Window accumulators of one numeric feature: values binned on the reference's percentile
//! edges, and the drift statistics of a window at its close.
//!
//! Bins are counts, so the accumulators of two disjoint parts of a window merge by adding.

use crate::stats;

/// Count finite `values` into `bins` (bin i holds values in [edges[i-1], edges[i])), as
/// Python's `bisect_right`; returns how many fell outside [low, high].
pub fn bin_into(values: &[f64], edges: &[f64], bins: &mut [u32], low: f64, high: f64) -> u64 {
    let mut beyond = 0;
    for &value in values {
        let bin = edges.partition_point(|&edge| edge <= value);
        if let Some(count) = bins.get_mut(bin) {
            *count += 1;
        }
        if value < low || value > high {
            beyond += 1;
        }
    }
    beyond
}

/// Add the bins of another part of the same window.
pub fn merge_bins(into: &mut [u32], other: &[u32]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
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
    pub coarse_of: &'a [u16],
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

/// PSI, Jensen-Shannon and chi-square on the deciles; KS and Wasserstein on the percentiles.
pub fn numeric_drift(bins: &[u32], reference: &NumericReferenceView<'_>) -> NumericDrift {
    let mut coarse = vec![0.0; reference.coarse_counts.len()];
    for (&count, &target) in bins.iter().zip(reference.coarse_of) {
        if let Some(slot) = coarse.get_mut(usize::from(target)) {
            *slot += f64::from(count);
        }
    }
    let fine: Vec<f64> = bins.iter().map(|&c| f64::from(c)).collect();
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
        let edges = [0.0, 1.0, 2.0];
        let mut bins = [0u32; 4];
        let beyond = bin_into(
            &[-5.0, 0.0, 0.5, 1.0, 2.0, 7.0],
            &edges,
            &mut bins,
            -1.0,
            3.0,
        );
        assert_eq!(bins, [1, 2, 1, 2]);
        assert_eq!(beyond, 2);
    }

    #[test]
    fn bins_of_two_parts_merge_into_the_bins_of_all() {
        let edges = [0.0, 1.0, 2.0];
        let values = [0.1, 1.5, -3.0, 2.5, 0.7, 1.0];
        let mut all = [0u32; 4];
        bin_into(&values, &edges, &mut all, 0.0, 2.0);
        let (mut left, mut right) = ([0u32; 4], [0u32; 4]);
        bin_into(&values[..2], &edges, &mut left, 0.0, 2.0);
        bin_into(&values[2..], &edges, &mut right, 0.0, 2.0);
        merge_bins(&mut left, &right);
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
        let drift = numeric_drift(&[10, 20, 30, 40], &reference);
        assert_eq!(drift.psi, Some(0.0));
        assert_eq!(drift.ks, Some(0.0));
        assert_eq!(drift.wasserstein, Some(0.0));
        assert_eq!(widths(&[0.0, 1.0, 3.0], 4), vec![1.0, 2.0, 0.0, 0.0]);
    }
}
