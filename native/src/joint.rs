//! Joint moments of a model's numeric features, for multivariate drift.
//!
//! Each event whose monitored numeric features are all finite numbers is standardised with the
//! reference's means and standard deviations (z, clipped to +-[`CLIP`]) and counted into the
//! window: the sums of z and of every product z_i z_j (i <= j). From them the Python side
//! computes, at close, the window's means, covariances and correlations, and so the mean PCA
//! reconstruction error (the trace of the discarded components' projector against the second
//! moments) and each pair's correlation, without another pass over the events.
//!
//! The sums are fixed point (i64, a power-of-two scale), so two disjoint parts of a window
//! merge by adding into exactly the sums of all of it, whatever the order.

/// Standardised values beyond this are counted as this (a value 16 sd out is an outlier, and
/// the bound keeps every product's fixed point far from overflow).
pub const CLIP: f64 = 16.0;
/// Fixed-point scale of the sums of z (|z| <= 16: 2^28 per event at most).
pub const SUM_SCALE: f64 = (1u64 << 24) as f64;
/// Fixed-point scale of the sums of z_i z_j (|z_i z_j| <= 256: 2^28 per event at most).
pub const CROSS_SCALE: f64 = (1u64 << 20) as f64;

/// How the events of a model are standardised: which feature slots, their means and 1 / sd.
#[derive(Clone, Debug, PartialEq)]
pub struct JointRef {
    pub slots: Vec<u32>,
    pub mean: Vec<f64>,
    pub inv_sd: Vec<f64>,
}

impl JointRef {
    /// None unless the three lists are as long as each other, at least 2, and every mean and
    /// 1 / sd is finite (1 / sd positive).
    pub fn new(slots: Vec<u32>, mean: Vec<f64>, inv_sd: Vec<f64>) -> Option<Self> {
        let n = slots.len();
        let valid = n >= 2
            && mean.len() == n
            && inv_sd.len() == n
            && mean.iter().all(|m| m.is_finite())
            && inv_sd.iter().all(|s| s.is_finite() && *s > 0.0);
        valid.then_some(Self {
            slots,
            mean,
            inv_sd,
        })
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
        for (i, &slot) in self.slots.iter().enumerate() {
            match value(slot as usize) {
                Some(x) if x.is_finite() => {
                    z[i] = ((x - self.mean[i]) * self.inv_sd[i]).clamp(-CLIP, CLIP);
                }
                _ => return false,
            }
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

    fn reference() -> JointRef {
        JointRef::new(vec![0, 2, 3], vec![1.0, -2.0, 0.0], vec![0.5, 1.0, 2.0]).expect("valid")
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
        assert!(JointRef::new(vec![0], vec![0.0], vec![1.0]).is_none());
        assert!(JointRef::new(vec![0, 1], vec![0.0], vec![1.0, 1.0]).is_none());
        assert!(JointRef::new(vec![0, 1], vec![0.0, f64::NAN], vec![1.0, 1.0]).is_none());
        assert!(JointRef::new(vec![0, 1], vec![0.0, 0.0], vec![1.0, 0.0]).is_none());
    }
}
