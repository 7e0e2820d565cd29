//! Joint moments of a model's numeric features, for multivariate drift.
//!
//! Each event whose monitored numeric features are all finite numbers is taken as its values'
//! normal scores in their references (a Gaussian copula: see [`crate::ranks`]), standardised
//! with the reference's means and standard deviations of those (z, clipped to +-[`CLIP`]), and
//! counted into the window: the sums of z and of every product z_i z_j (i <= j). From them the
//! core computes, at close, the window's means, covariances and correlations, and so the mean
//! PCA reconstruction error (the trace of the discarded components' projector against the
//! second moments) and each pair's correlation, without another pass over the events. Normal
//! scores make the moments bounded and their spread a property of the copula, not of the
//! features' tails; each pair's correlation is tested against its own spread, measured on the
//! reference (a dependence that is not linear spreads a correlation wider than Fisher's 1/n).
//!
//! The sums are fixed point (i64, a power-of-two scale), so two disjoint parts of a window
//! merge by adding into exactly the sums of all of it, whatever the order.

use crate::features::Edges;
use crate::ranks::Ranks;
use crate::special::norm_sf;

/// A window is tested with at least this many complete events: below it the tails of its
/// statistics are too far from normal for a family-wise significance of about 1e-6.
pub const MIN_EVENTS: u64 = 500;

/// Standardised values beyond this are counted as this (a value 16 sd out is an outlier, and
/// the bound keeps every product's fixed point far from overflow).
pub const CLIP: f64 = 16.0;
/// Fixed-point scale of the sums of z (|z| <= 16: 2^28 per event at most).
pub const SUM_SCALE: f64 = (1u64 << 24) as f64;
/// Fixed-point scale of the sums of z_i z_j (|z_i z_j| <= 256: 2^28 per event at most).
pub const CROSS_SCALE: f64 = (1u64 << 20) as f64;

/// What a window's joint moments are compared with (fitted by the Python side on the
/// reference: `stream_monitor.monitor.multivariate.fit_joint`).
#[derive(Clone, Debug, PartialEq)]
pub struct JointBand {
    /// Components kept (they explain the configured share of the variance).
    pub kept: u32,
    /// The other components, row after row (unit vectors of the features' length).
    pub discarded: Vec<f64>,
    /// Per-event reconstruction error over the held-out half of the reference.
    pub error_mean: f64,
    pub error_sd: f64,
    pub held_out: u64,
    /// The reference's correlation of every pair i < j, row by row (4 bytes each: they only
    /// enter a test statistic).
    pub correlations: Vec<f32>,
    /// Complete events in the reference.
    pub sample_size: u64,
    /// Each pair's n Var(r) / (1 - r^2)^2 on the reference (1 for a normal pair): how much
    /// wider than Fisher's 1 / n the pair's correlation spreads, never taken as narrower (a
    /// near-constant feature's fourth moments, from a few hundred events, are mostly noise).
    /// Row by row, as `correlations`.
    pub pair_spread: Vec<f32>,
    /// Percentile edges of the reconstruction error of half the difference of two events
    /// (what the joint detectors see) on the held-out half, and the errors per bin.
    pub error_edges: Vec<f64>,
    pub error_counts: Vec<f64>,
}

/// How the events of a model are standardised (feature slots, means, 1 / sd) and the band.
#[derive(Clone, Debug, PartialEq)]
pub struct JointRef {
    pub slots: Vec<u32>,
    pub mean: Vec<f64>,
    pub inv_sd: Vec<f64>,
    pub band: JointBand,
    /// The ranks of the detectors' errors in the held-out half (from `band`'s counts).
    pub error_ranks: Ranks,
}

/// A window's multivariate test: the largest |z| of its tests, their combined p-value
/// (Bonferroni), the reconstruction error and its z, and the three pairs of largest |z| as
/// (i, j, correlation, reference correlation, z).
#[derive(Clone, Debug, PartialEq)]
pub struct JointTest {
    pub value: f64,
    pub p_value: f64,
    pub error: f64,
    pub error_z: f64,
    pub pairs: Vec<(u32, u32, f64, f64, f64)>,
}

impl JointRef {
    /// None unless the lists fit each other (at least 3 features, a component kept and one
    /// discarded), every mean, 1 / sd and band figure is finite (1 / sd and the error's sd
    /// positive).
    pub fn new(slots: Vec<u32>, mean: Vec<f64>, inv_sd: Vec<f64>, band: JointBand) -> Option<Self> {
        let n = slots.len();
        let kept = band.kept as usize;
        let valid = n >= 3
            && mean.len() == n
            && inv_sd.len() == n
            && kept > 0
            && kept < n
            && band.discarded.len() == (n - kept) * n
            && band.correlations.len() == n * (n - 1) / 2
            && band.held_out > 3
            && band.sample_size > 3
            && band.error_mean.is_finite()
            && band.error_sd.is_finite()
            && band.error_sd > 0.0
            && band.discarded.iter().all(|v| v.is_finite())
            && band
                .correlations
                .iter()
                .all(|r| r.is_finite() && r.abs() < 1.0)
            && band.pair_spread.len() == band.correlations.len()
            && band.pair_spread.iter().all(|v| v.is_finite() && *v > 0.0)
            && band.error_counts.len() == band.error_edges.len() + 1
            && band.error_edges.windows(2).all(|w| w[0] < w[1])
            && mean.iter().all(|m| m.is_finite())
            && inv_sd.iter().all(|s| s.is_finite() && *s > 0.0);
        if !valid {
            return None;
        }
        let ranks = Ranks::of_counts(&band.error_counts)?;
        Some(Self {
            slots,
            mean,
            inv_sd,
            error_ranks: ranks,
            band,
        })
    }

    /// The normal score of a joint detector's error in the held-out half's errors.
    pub fn error_score(&self, error: f64) -> f64 {
        let bin = self.band.error_edges.partition_point(|&edge| edge <= error);
        self.error_ranks.normal(bin)
    }

    /// Test a window's moments (None with fewer than [`MIN_EVENTS`] events, or when a feature
    /// did not vary).
    pub fn test(&self, joint: &Joint) -> Option<JointTest> {
        let f = self.len();
        if joint.n < MIN_EVENTS || joint.sums.len() != f {
            return None;
        }
        let n = joint.n as f64;
        let (sums, cross) = joint.values();
        let means: Vec<f64> = sums.iter().map(|s| s / n).collect();
        // the window's covariance matrix (biased), full
        let mut covariance = vec![0.0; f * f];
        let mut at = 0;
        for i in 0..f {
            for j in i..f {
                let c = cross[at] / n - means[i] * means[j];
                covariance[i * f + j] = c;
                covariance[j * f + i] = c;
                at += 1;
            }
        }
        // below the fixed point's resolution (2^-20 a product): the feature did not vary
        if (0..f).any(|i| covariance[i * f + i] <= 1e-6) {
            return None;
        }
        let band = &self.band;
        let error: f64 = band
            .discarded
            .chunks_exact(f)
            .map(|u| {
                let mut quadratic = 0.0;
                for i in 0..f {
                    let row = &covariance[i * f..(i + 1) * f];
                    quadratic += u[i] * row.iter().zip(u).map(|(c, v)| c * v).sum::<f64>();
                }
                quadratic
            })
            .sum();
        let error_z = (error - band.error_mean)
            / (band.error_sd * (1.0 / n + 1.0 / band.held_out as f64).sqrt());
        let spread = (1.0 / (n - 3.0) + 1.0 / (band.sample_size as f64 - 3.0)).sqrt();
        let limit = 0.999_999_f64;
        let mut pairs = Vec::with_capacity(f * (f - 1) / 2);
        let mut at = 0;
        for i in 0..f {
            for j in i + 1..f {
                let r = (covariance[i * f + j]
                    / (covariance[i * f + i] * covariance[j * f + j]).sqrt())
                .clamp(-limit, limit);
                let reference = f64::from(band.correlations[at]).clamp(-limit, limit);
                let widening = f64::from(band.pair_spread[at]).sqrt();
                let z = (r.atanh() - reference.atanh()) / (spread * widening);
                pairs.push((i as u32, j as u32, r, reference, z));
                at += 1;
            }
        }
        // largest |z| first; ties in pair order (stable)
        pairs.sort_by(|a, b| b.4.abs().total_cmp(&a.4.abs()));
        let strongest = pairs.first().map_or(0.0, |p| p.4.abs());
        let two_sided = |z: f64| 2.0 * norm_sf(z.abs());
        let tests = (1 + pairs.len()) as f64;
        let smallest = two_sided(error_z).min(two_sided(strongest));
        pairs.truncate(3);
        Some(JointTest {
            value: error_z.abs().max(strongest),
            p_value: (smallest * tests).min(1.0),
            error,
            error_z,
            pairs,
        })
    }

    /// One standardised event's reconstruction error: its squared distance from the kept
    /// components' subspace (the sum of its squared projections on the discarded ones).
    pub fn error_of(&self, z: &[f64]) -> f64 {
        self.band
            .discarded
            .chunks_exact(z.len())
            .map(|u| {
                let projection: f64 = u.iter().zip(z).map(|(a, b)| a * b).sum();
                projection * projection
            })
            .sum()
    }

    /// The number of features.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a reference has at least 2 features.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Standardise one event into `z` (as long as the slots); false when a value is missing.
    pub fn standardise(&self, value: impl Fn(usize) -> Option<f64>, z: &mut [f64]) -> bool {
        self.standardise_scores(|i| value(self.slots[i] as usize).unwrap_or(f64::NAN), z)
    }

    /// [`JointRef::standardise`] of the values by the features' order here (`score(i)` for
    /// the i-th joint feature; not finite: missing).
    pub fn standardise_scores(&self, score: impl Fn(usize) -> f64, z: &mut [f64]) -> bool {
        for (i, out) in z.iter_mut().enumerate().take(self.len()) {
            let x = score(i);
            if !x.is_finite() {
                return false;
            }
            *out = ((x - self.mean[i]) * self.inv_sd[i]).clamp(-CLIP, CLIP);
        }
        true
    }
}

/// The joint moments of one window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Joint {
    /// Events counted (all features present).
    pub n: u64,
    /// Sum of z per feature (fixed point).
    pub sums: Vec<i64>,
    /// Sum of z_i z_j for i <= j, row by row (fixed point).
    pub cross: Vec<i64>,
}

/// The fixed point of `x` at `scale` (round half away from zero: the same on every machine).
fn fixed(x: f64, scale: f64) -> i64 {
    (x * scale).round() as i64
}

impl Joint {
    /// Empty moments of `features` features.
    pub fn new(features: usize) -> Self {
        Self {
            n: 0,
            sums: vec![0; features],
            cross: vec![0; features * (features + 1) / 2],
        }
    }

    /// Count one standardised event.
    pub fn add(&mut self, z: &[f64]) {
        debug_assert_eq!(z.len(), self.sums.len());
        self.n += 1;
        let mut at = 0;
        for (i, &zi) in z.iter().enumerate() {
            self.sums[i] = self.sums[i].saturating_add(fixed(zi, SUM_SCALE));
            for &zj in &z[i..] {
                self.cross[at] = self.cross[at].saturating_add(fixed(zi * zj, CROSS_SCALE));
                at += 1;
            }
        }
    }

    /// Add the moments of another part of the same window (of the same features).
    pub fn merge(&mut self, other: &Self) {
        self.n += other.n;
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a = a.saturating_add(*b);
        }
        for (a, b) in self.cross.iter_mut().zip(&other.cross) {
            *a = a.saturating_add(*b);
        }
    }

    /// The sums as numbers: (sum of z per feature, sum of z_i z_j for i <= j).
    pub fn values(&self) -> (Vec<f64>, Vec<f64>) {
        (
            self.sums.iter().map(|&s| s as f64 / SUM_SCALE).collect(),
            self.cross.iter().map(|&s| s as f64 / CROSS_SCALE).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(kept: u32, features: usize) -> JointBand {
        let discarded = (0..(features - kept as usize) * features)
            .map(|i| if i % (features + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        JointBand {
            kept,
            discarded,
            error_mean: 1.0,
            error_sd: 1.4,
            held_out: 500,
            correlations: vec![0.0; features * (features - 1) / 2],
            sample_size: 1000,
            pair_spread: vec![1.0; features * (features - 1) / 2],
            error_edges: vec![0.5, 1.0, 2.0],
            error_counts: vec![10.0, 10.0, 10.0, 10.0],
        }
    }

    fn reference() -> JointRef {
        JointRef::new(
            vec![0, 2, 3],
            vec![1.0, -2.0, 0.0],
            vec![0.5, 1.0, 2.0],
            band(2, 3),
        )
        .expect("valid")
    }

    fn rows() -> Vec<[f64; 4]> {
        // a small deterministic stream (a linear congruential generator)
        let mut state: u64 = 12345;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 6.0 - 3.0
        };
        (0..500).map(|_| [next(), next(), next(), next()]).collect()
    }

    fn count(rows: &[[f64; 4]], reference: &JointRef) -> Joint {
        let mut joint = Joint::new(reference.len());
        let mut z = vec![0.0; reference.len()];
        for row in rows {
            if reference.standardise(|slot| Some(row[slot]), &mut z) {
                joint.add(&z);
            }
        }
        joint
    }

    #[test]
    fn two_parts_merge_into_the_moments_of_all() {
        let reference = reference();
        let rows = rows();
        let all = count(&rows, &reference);
        for cut in [0, 1, 137, 499, 500] {
            let mut left = count(&rows[..cut], &reference);
            left.merge(&count(&rows[cut..], &reference));
            assert_eq!(left, all, "cut at {cut}");
        }
    }

    #[test]
    fn moments_are_those_of_the_standardised_values() {
        let reference = reference();
        let rows = rows();
        let joint = count(&rows, &reference);
        let (sums, cross) = joint.values();
        let z = |row: &[f64; 4], i: usize| {
            let slot = reference.slots[i] as usize;
            (row[slot] - reference.mean[i]) * reference.inv_sd[i]
        };
        let exact_sum: f64 = rows.iter().map(|r| z(r, 1)).sum();
        assert!((sums[1] - exact_sum).abs() < 1e-4);
        // cross[1] is z_0 z_1 (row 0: (0,0), (0,1), (0,2); row 1: (1,1), (1,2); row 2: (2,2))
        let exact_cross: f64 = rows.iter().map(|r| z(r, 0) * z(r, 1)).sum();
        assert!((cross[1] - exact_cross).abs() < 1e-3);
        let exact_square: f64 = rows.iter().map(|r| z(r, 2) * z(r, 2)).sum();
        assert!((cross[5] - exact_square).abs() < 1e-3);
        assert_eq!(joint.n, 500);
        assert_eq!(cross.len(), 6);
    }

    #[test]
    fn an_event_with_a_missing_value_is_not_counted() {
        let reference = reference();
        let mut z = vec![0.0; 3];
        let row = [1.0, 2.0, f64::NAN, 4.0];
        assert!(!reference.standardise(|slot| Some(row[slot]), &mut z));
        assert!(!reference.standardise(|slot| (slot != 3).then_some(row[slot]), &mut z));
    }

    #[test]
    fn outliers_are_clipped() {
        let reference = reference();
        let mut z = vec![0.0; 3];
        assert!(reference.standardise(|_| Some(1e300), &mut z));
        assert_eq!(z, vec![CLIP; 3]);
        let mut joint = Joint::new(3);
        joint.add(&z);
        assert_eq!(joint.cross[0], (CLIP * CLIP * CROSS_SCALE) as i64);
    }

    #[test]
    fn invalid_references_are_refused() {
        let three = || (vec![0, 1, 2], vec![0.0; 3], vec![1.0; 3]);
        let (s, m, v) = three();
        assert!(JointRef::new(s, m, v, band(2, 3)).is_some());
        assert!(JointRef::new(vec![0, 1], vec![0.0; 2], vec![1.0; 2], band(1, 2)).is_none());
        let (s, _, v) = three();
        assert!(JointRef::new(s, vec![0.0, f64::NAN, 0.0], v, band(2, 3)).is_none());
        let (s, m, _) = three();
        assert!(JointRef::new(s, m, vec![1.0, 0.0, 1.0], band(2, 3)).is_none());
        let (s, m, v) = three();
        assert!(JointRef::new(s, m, v, band(3, 3)).is_none()); // nothing discarded
        let (s, m, v) = three();
        let mut wrong = band(2, 3);
        wrong.correlations.pop();
        assert!(JointRef::new(s, m, v, wrong).is_none());
        let (s, m, v) = three();
        let mut wrong = band(2, 3);
        wrong.error_sd = 0.0;
        assert!(JointRef::new(s, m, v, wrong).is_none());
    }

    #[test]
    fn the_test_finds_a_new_correlation_and_names_the_pair() {
        let reference = reference();
        let mut joint = Joint::new(3);
        let mut z = vec![0.0; 3];
        for row in rows() {
            // the second feature (slot 2) follows the first (slot 0)
            let correlated = [
                row[0],
                row[1],
                (row[0] - 1.0) * 0.5 - 2.0 + 0.1 * row[2],
                row[3],
            ];
            assert!(reference.standardise(|slot| Some(correlated[slot]), &mut z));
            joint.add(&z);
        }
        let test = reference.test(&joint).expect("a test");
        let (i, j, r, r0, pair_z) = test.pairs[0];
        assert_eq!((i, j), (0, 1));
        assert!(r > 0.95 && r0 == 0.0 && pair_z > 20.0);
        assert_eq!(test.pairs.len(), 3);
        assert!(test.p_value < 1e-50);
        assert_eq!(test.value, pair_z);
    }

    #[test]
    fn too_few_events_or_a_constant_feature_give_no_test() {
        let reference = reference();
        let mut joint = Joint::new(3);
        for _ in 0..3 {
            joint.add(&[0.1, 0.2, 0.3]);
        }
        assert!(reference.test(&joint).is_none());
        joint.add(&[0.1, 0.5, 0.3]);
        assert!(reference.test(&joint).is_none()); // the first and last did not vary
    }
}

/// Eigenvalues and unit eigenvectors (columns of the returned row-major matrix) of a symmetric
/// `n` x `n` matrix, by cyclic Jacobi rotations (deterministic; exact enough for a few hundred
/// features). Unsorted.
fn symmetric_eigen(matrix: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = matrix.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum::<f64>();
        if off <= 1e-30 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// What [`fit`] returns: the columns used, their means and standard deviations, the band.
pub type Fitted = (Vec<usize>, Vec<f64>, Vec<f64>, JointBand);

/// A joint reference fitted on reference columns (NaN = missing), what
/// `stream_monitor.monitor.multivariate.fit_joint` returns: the columns used (those that vary),
/// their means and standard deviations, and the band. None when fewer than 3 columns vary or
/// fewer than 100 events have every column.
pub fn fit(columns: &[&[f64]], share: f64) -> Option<Fitted> {
    let events = columns.iter().map(|c| c.len()).min()?;
    let complete: Vec<usize> = (0..events)
        .filter(|&e| columns.iter().all(|c| c[e].is_finite()))
        .collect();
    let n = complete.len();
    if columns.len() < 3 || n < 100 {
        return None;
    }
    let moments = |c: &[f64]| {
        let mean = complete.iter().map(|&e| c[e]).sum::<f64>() / n as f64;
        let var = complete.iter().map(|&e| (c[e] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt())
    };
    let mut used = Vec::new();
    let (mut mean, mut sd) = (Vec::new(), Vec::new());
    for (i, column) in columns.iter().enumerate() {
        let (m, s) = moments(column);
        if s.is_finite() && s > 0.0 {
            used.push(i);
            mean.push(m);
            sd.push(s);
        }
    }
    let f = used.len();
    if f < 3 {
        return None;
    }
    // standardised rows, clipped as the window's events are
    let z: Vec<f64> = complete
        .iter()
        .flat_map(|&e| {
            let (mean, sd, used) = (&mean, &sd, &used);
            (0..f).map(move |i| ((columns[used[i]][e] - mean[i]) / sd[i]).clamp(-CLIP, CLIP))
        })
        .collect();
    let rows = |parity: usize| z.chunks_exact(f).skip(parity).step_by(2);
    // covariance of the fitting half (even rows), about its own means, n - 1
    let fit_n = rows(0).count();
    let mut centre = vec![0.0; f];
    for row in rows(0) {
        for (c, x) in centre.iter_mut().zip(row) {
            *c += x / fit_n as f64;
        }
    }
    let mut covariance = vec![0.0; f * f];
    for row in rows(0) {
        for i in 0..f {
            let di = row[i] - centre[i];
            for j in i..f {
                covariance[i * f + j] += di * (row[j] - centre[j]);
            }
        }
    }
    for i in 0..f {
        for j in i..f {
            let c = covariance[i * f + j] / (fit_n - 1) as f64;
            covariance[i * f + j] = c;
            covariance[j * f + i] = c;
        }
    }
    let (values, vectors) = symmetric_eigen(&covariance, f);
    let mut order: Vec<usize> = (0..f).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let total: f64 = values.iter().sum();
    let mut kept = f - 1;
    let mut running = 0.0;
    for (k, &i) in order.iter().enumerate() {
        running += values[i];
        if running / total >= share - 1e-12 {
            kept = (k + 1).min(f - 1);
            break;
        }
    }
    let discarded: Vec<f64> = order[kept..]
        .iter()
        .flat_map(|&col| (0..f).map(move |row| (row, col)))
        .map(|(row, col)| vectors[row * f + col])
        .collect();
    // the held-out half (odd rows), centred on its own means
    let held: Vec<&[f64]> = rows(1).collect();
    let held_n = held.len();
    let mut held_centre = vec![0.0; f];
    for row in &held {
        for (c, x) in held_centre.iter_mut().zip(row.iter()) {
            *c += x / held_n as f64;
        }
    }
    let errors: Vec<f64> = held
        .iter()
        .map(|row| {
            discarded
                .chunks_exact(f)
                .map(|u| {
                    let p: f64 = (0..f).map(|i| u[i] * (row[i] - held_centre[i])).sum();
                    p * p
                })
                .sum()
        })
        .collect();
    let error_mean = errors.iter().sum::<f64>() / held_n as f64;
    let error_var =
        errors.iter().map(|e| (e - error_mean).powi(2)).sum::<f64>() / (held_n - 1) as f64;
    // correlations of all the standardised rows
    let all_centre: Vec<f64> = (0..f)
        .map(|i| z.chunks_exact(f).map(|r| r[i]).sum::<f64>() / n as f64)
        .collect();
    let mut products = vec![0.0; f * f];
    for row in z.chunks_exact(f) {
        for i in 0..f {
            let di = row[i] - all_centre[i];
            for j in i..f {
                products[i * f + j] += di * (row[j] - all_centre[j]);
            }
        }
    }
    let mut correlations = Vec::with_capacity(f * (f - 1) / 2);
    let mut pair_spread = Vec::with_capacity(f * (f - 1) / 2);
    let unit: Vec<f64> = (0..f)
        .map(|i| (products[i * f + i] / n as f64).sqrt())
        .collect();
    for i in 0..f {
        for j in i + 1..f {
            let r = products[i * f + j] / (products[i * f + i] * products[j * f + j]).sqrt();
            let r = r.clamp(-0.999_999, 0.999_999);
            correlations.push(r as f32);
            // n Var(r) by the delta method, E[(a b - r (a^2 + b^2) / 2)^2] for the pair's
            // standardised values, over the normal pair's (1 - r^2)^2
            let spread = z
                .chunks_exact(f)
                .map(|row| {
                    let a = (row[i] - all_centre[i]) / unit[i];
                    let b = (row[j] - all_centre[j]) / unit[j];
                    (a * b - r * (a * a + b * b) / 2.0).powi(2)
                })
                .sum::<f64>()
                / n as f64;
            let widening = spread / (1.0 - r * r).powi(2);
            pair_spread.push(widening.clamp(1.0, 100.0) as f32);
        }
    }
    // what the joint detectors see: the error of half the difference of two events, here of
    // each held-out event and the next
    let pair_errors: Vec<f64> = held
        .windows(2)
        .map(|two| {
            discarded
                .chunks_exact(f)
                .map(|u| {
                    let p: f64 = (0..f)
                        .map(|i| u[i] * (two[0][i] - two[1][i]) * std::f64::consts::FRAC_1_SQRT_2)
                        .sum();
                    p * p
                })
                .sum()
        })
        .collect();
    let (error_edges, error_counts) = percentile_bins(pair_errors);
    let band = JointBand {
        kept: kept as u32,
        discarded,
        error_mean,
        error_sd: error_var.sqrt(),
        held_out: held_n as u64,
        correlations,
        sample_size: n as u64,
        pair_spread,
        error_edges,
        error_counts,
    };
    (band.error_sd > 0.0).then_some((used, mean, sd, band))
}

/// Distinct percentile edges of `values` (every 2%) and how many values fall in each bin
/// (a value equal to an edge is in the bin above it, as [`Edges::bin_of`] has it).
fn percentile_bins(mut values: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mut edges: Vec<f64> = (1..50)
        .filter_map(|k| values.get(k * n / 50).copied())
        .collect();
    edges.dedup();
    let mut counts = vec![0.0; edges.len() + 1];
    for v in &values {
        counts[edges.partition_point(|e| e <= v)] += 1.0;
    }
    (edges, counts)
}

/// A reference column as the normal scores of its values in the feature's reference (NaN
/// stays NaN: missing).
pub fn normal_scores(column: &[f64], edges: &Edges, ranks: &Ranks) -> Vec<f64> {
    column
        .iter()
        .map(|&x| {
            if x.is_finite() {
                ranks.normal(edges.bin_of(x))
            } else {
                f64::NAN
            }
        })
        .collect()
}

#[cfg(test)]
mod fit_tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_eigenpairs() {
        let m = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (values, vectors) = symmetric_eigen(&m, 3);
        for k in 0..3 {
            for i in 0..3 {
                let mv: f64 = (0..3).map(|j| m[i * 3 + j] * vectors[j * 3 + k]).sum();
                assert!((mv - values[k] * vectors[i * 3 + k]).abs() < 1e-10);
            }
        }
        assert!((values.iter().sum::<f64>() - 8.0).abs() < 1e-10);
    }

    #[test]
    fn two_copies_leave_little_to_reconstruct() {
        let mut state: u64 = 7;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..1000 {
            let x = next();
            a.push(x);
            b.push(x + 0.01 * next());
            c.push(next());
        }
        let (used, _, _, band) = fit(&[&a, &b, &c], 0.9).expect("a fit");
        assert_eq!(used, vec![0, 1, 2]);
        assert_eq!(band.kept, 2);
        assert!(band.error_mean < 0.01);
        assert!(band.correlations[0] > 0.99);
        let constant = vec![1.0; 1000];
        assert!(fit(&[&a, &b, &constant], 0.9).is_none());
        assert!(fit(&[&a[..99], &b[..99], &c[..99]], 0.9).is_none());
    }
}
