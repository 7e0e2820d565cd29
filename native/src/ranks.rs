//! Each value's place in its reference's distribution: the inputs that make the change
//! detectors and the multivariate test free of the features' shapes.
//!
//! A value falls in a bin of the reference's percentile edges; its *mid-rank* is the share of
//! the reference below that bin plus half the bin's own share. Under no change the mid-ranks
//! of new values have the reference's distribution of mid-ranks whatever the feature's tails,
//! atoms or modes: mean 1/2 and variance (1 - sum p^3) / 12 for bin shares p (a tie-corrected
//! uniform). The *normal score* is the standard normal quantile of the mid-rank (a Gaussian
//! copula): the features' joint moments are taken on those.

use crate::special::norm_ppf;

/// Mid-ranks and normal scores of the bins of one reference (one more bin than edges).
#[derive(Clone, Debug, PartialEq)]
pub struct Ranks {
    mid: Box<[f32]>,
    normal: Box<[f32]>,
    /// The variance of a reference value's mid-rank (0 when one bin holds every value).
    pub variance: f64,
    /// The mean and variance of a reference value's normal score.
    pub normal_mean: f64,
    pub normal_variance: f64,
}

impl Ranks {
    /// The ranks of bins holding `counts` reference values; None when they hold none.
    pub fn of_counts(counts: &[f64]) -> Option<Self> {
        let total: f64 = counts.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            return None;
        }
        // an empty bin's mid-rank is where it lies, kept off 0 and 1 for its normal score
        let floor = 0.5 / total;
        let mut below = 0.0;
        let mut mid = Vec::with_capacity(counts.len());
        let mut normal = Vec::with_capacity(counts.len());
        let mut cubes = 0.0;
        let (mut first, mut second) = (0.0, 0.0);
        for &count in counts {
            let share = count / total;
            let m = (below + share / 2.0).clamp(floor, 1.0 - floor);
            below += share;
            cubes += share * share * share;
            let z = f64::from(norm_ppf(m) as f32);
            first += share * z;
            second += share * z * z;
            #[allow(clippy::cast_possible_truncation)] // ranks need no more than f32
            {
                mid.push(m as f32);
                normal.push(norm_ppf(m) as f32);
            }
        }
        Some(Self {
            mid: mid.into_boxed_slice(),
            normal: normal.into_boxed_slice(),
            variance: ((1.0 - cubes) / 12.0).max(0.0),
            normal_mean: first,
            normal_variance: (second - first * first).max(0.0),
        })
    }

    /// The mid-rank of a value in `bin` (bins beyond the last read as the last).
    pub fn mid(&self, bin: usize) -> f64 {
        f64::from(self.mid[bin.min(self.mid.len() - 1)])
    }

    /// The normal score of a value in `bin`.
    pub fn normal(&self, bin: usize) -> f64 {
        f64::from(self.normal[bin.min(self.normal.len() - 1)])
    }

    pub fn heap_bytes(&self) -> usize {
        (self.mid.len() + self.normal.len()) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bins_give_the_uniform_mid_ranks() {
        let ranks = Ranks::of_counts(&[10.0; 4]).expect("ranks");
        let mids: Vec<f64> = (0..4).map(|b| ranks.mid(b)).collect();
        assert_eq!(mids, vec![0.125, 0.375, 0.625, 0.875]);
        // (1 - 4 / 64) / 12, the variance of those four values
        let mean = 0.5;
        let exact: f64 = mids.iter().map(|m| (m - mean) * (m - mean)).sum::<f64>() / 4.0;
        assert!((ranks.variance - exact).abs() < 1e-12);
        assert!((ranks.normal(0) + ranks.normal(3)).abs() < 1e-6);
        assert!(ranks.normal(1) < 0.0 && ranks.normal(2) > 0.0);
        assert!(ranks.normal_mean.abs() < 1e-7);
        let exact: f64 = (0..4).map(|b| ranks.normal(b).powi(2)).sum::<f64>() / 4.0;
        assert!((ranks.normal_variance - exact).abs() < 1e-12);
    }

    #[test]
    fn an_atom_shares_one_rank_and_the_variance_counts_the_tie() {
        // 70% of the reference in one bin (zero-inflated spend), the rest spread out
        let counts = [70.0, 10.0, 10.0, 10.0];
        let ranks = Ranks::of_counts(&counts).expect("ranks");
        assert!((ranks.mid(0) - 0.35).abs() < 1e-6);
        let shares: Vec<f64> = counts.iter().map(|c| c / 100.0).collect();
        let mean: f64 = (0..4).map(|b| shares[b] * ranks.mid(b)).sum();
        let variance: f64 = (0..4)
            .map(|b| shares[b] * (ranks.mid(b) - mean).powi(2))
            .sum();
        assert!((mean - 0.5).abs() < 1e-6);
        assert!((variance - ranks.variance).abs() < 1e-6);
        let normal: f64 = (0..4).map(|b| shares[b] * ranks.normal(b)).sum();
        assert!((normal - ranks.normal_mean).abs() < 1e-12 && normal > 0.05); // not centred
        assert_eq!(ranks.mid(9), ranks.mid(3)); // beyond the last bin reads as the last
    }

    #[test]
    fn one_bin_has_no_spread_and_no_counts_no_ranks() {
        assert_eq!(Ranks::of_counts(&[5.0]).expect("ranks").variance, 0.0);
        assert!(Ranks::of_counts(&[0.0, 0.0]).is_none());
        let empty_ends = Ranks::of_counts(&[0.0, 4.0, 0.0]).expect("ranks");
        assert!(empty_ends.normal(0).is_finite() && empty_ends.normal(2).is_finite());
    }
}
