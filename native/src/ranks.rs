//! Each value's place in its reference's distribution: the inputs that make the change
//! detectors and the multivariate test free of the features' shapes.
//!
//! A value falls in a bin of the reference's percentile edges; its *mid-rank* is the share of
//! the reference below that bin plus half the bin's own share. Under no change the mid-ranks
//! of new values have the reference's distribution of mid-ranks whatever the feature's tails,
//! atoms or modes: mean 1/2 and variance (1 - sum p^3) / 12 for bin shares p (a tie-corrected
//! uniform). The *normal score* is the standard normal quantile of the mid-rank (a Gaussian
//! copula): the features' joint moments are taken on those.

use std::sync::{Arc, Mutex};

use crate::interned::{shared, Pool};
use crate::special::norm_ppf;

/// Normal scores are kept in a byte each, in steps of 1 / `SCORE_STEPS` (+-6.35: the normal
/// quantile of half a value in a billion is 6.1); the step's rounding adds a spread of 0.014,
/// nothing beside a score's own. A byte a bin keeps a fleet's references small (1,000 models
/// of 20 features: 2 MB).
pub const SCORE_STEPS: f64 = 20.0;

/// Tables in use: references learnt from samples of one size have the same counts per
/// percentile bin, so a fleet's references share a few tables.
static TABLES: Mutex<Pool<Vec<i8>>> = Mutex::new(Pool::new());

/// Normal scores of the bins of one reference (one more bin than edges).
#[derive(Clone, Debug, PartialEq)]
pub struct Ranks {
    normal: Arc<Vec<i8>>,
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
        let mut normal = Vec::with_capacity(counts.len());
        let mut cubes = 0.0;
        let (mut first, mut second) = (0.0, 0.0);
        for &count in counts {
            let share = count / total;
            let m = (below + share / 2.0).clamp(floor, 1.0 - floor);
            below += share;
            cubes += share * share * share;
            #[allow(clippy::cast_possible_truncation)] // rounded into the byte's range
            let step = (norm_ppf(m) * SCORE_STEPS).round().clamp(-127.0, 127.0) as i8;
            let z = f64::from(step) / SCORE_STEPS;
            first += share * z;
            second += share * z * z;
            normal.push(step);
        }
        Some(Self {
            normal: shared(&TABLES, normal),
            variance: ((1.0 - cubes) / 12.0).max(0.0),
            normal_mean: first,
            normal_variance: (second - first * first).max(0.0),
        })
    }

    /// The normal score of a value in `bin` (bins beyond the last read as the last).
    pub fn normal(&self, bin: usize) -> f64 {
        f64::from(self.normal[bin.min(self.normal.len() - 1)]) / SCORE_STEPS
    }

    pub fn heap_bytes(&self) -> usize {
        self.normal.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bins_give_the_normal_quantiles_of_their_mid_ranks() {
        let ranks = Ranks::of_counts(&[10.0; 4]).expect("ranks");
        // mid-ranks 1/8, 3/8, 5/8, 7/8; the quantiles in steps of 1/20
        let scores: Vec<f64> = (0..4).map(|b| ranks.normal(b)).collect();
        assert_eq!(scores, vec![-1.15, -0.3, 0.3, 1.15]);
        // (1 - 4 / 64) / 12, the variance of those mid-ranks
        assert!((ranks.variance - 15.0 / 16.0 / 12.0).abs() < 1e-12);
        assert!(ranks.normal_mean.abs() < 1e-12);
        let exact: f64 = scores.iter().map(|z| z * z).sum::<f64>() / 4.0;
        assert!((ranks.normal_variance - exact).abs() < 1e-12);
        assert_eq!(ranks.normal(9), ranks.normal(3)); // beyond the last bin reads as the last
    }

    #[test]
    fn an_atom_shares_one_score_and_the_moments_count_it() {
        // 70% of the reference in one bin (zero-inflated spend), the rest spread out
        let counts = [70.0, 10.0, 10.0, 10.0];
        let ranks = Ranks::of_counts(&counts).expect("ranks");
        assert_eq!(ranks.normal(0), -0.4); // the quantile of 0.35, -0.385, to a step
        let shares: Vec<f64> = counts.iter().map(|c| c / 100.0).collect();
        let mean: f64 = (0..4).map(|b| shares[b] * ranks.normal(b)).sum();
        let second: f64 = (0..4).map(|b| shares[b] * ranks.normal(b).powi(2)).sum();
        assert!((mean - ranks.normal_mean).abs() < 1e-12 && mean > 0.05); // not centred
        assert!((second - mean * mean - ranks.normal_variance).abs() < 1e-12);
        // the mid-ranks' variance with the tie: (1 - sum p^3) / 12
        assert!((ranks.variance - (1.0 - 0.343 - 0.003) / 12.0).abs() < 1e-12);
    }

    #[test]
    fn one_bin_has_no_spread_and_no_counts_no_ranks() {
        let one = Ranks::of_counts(&[5.0]).expect("ranks");
        assert_eq!((one.variance, one.normal_variance), (0.0, 0.0));
        assert!(Ranks::of_counts(&[0.0, 0.0]).is_none());
        let empty_ends = Ranks::of_counts(&[0.0, 4.0, 0.0]).expect("ranks");
        assert!(empty_ends.normal(0) < -1.0 && empty_ends.normal(2) > 1.0); // off 0 and 1
    }
}
