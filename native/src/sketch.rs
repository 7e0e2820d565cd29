//! A small, mergeable, deterministic quantile sketch for latencies and lags.
//!
//! Values land in logarithmic buckets 2% wide, so any quantile is reported within 2% of an
//! observed value, with memory bounded by the value range, not by the number of values.

use std::collections::BTreeMap;

use crate::state::{Reader, StateError, Writer};

const GROWTH: f64 = 1.02;

/// Counts of non-negative values in 2%-wide logarithmic buckets (zero has its own bucket).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogHistogram {
    buckets: BTreeMap<i32, u64>,
    pub zeros: u64,
    pub count: u64,
    pub maximum: f64,
}

impl LogHistogram {
    /// Record one value; negative values (and NaN) count as zero.
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        if value.is_nan() || value <= 0.0 {
            self.zeros += 1;
            return;
        }
        self.maximum = self.maximum.max(value);
        let key = (value.ln() / GROWTH.ln()).floor() as i32;
        *self.buckets.entry(key).or_insert(0) += 1;
    }

    /// Add the counts of another sketch (of a disjoint part of the same values).
    pub fn merge(&mut self, other: &Self) {
        for (&key, &n) in &other.buckets {
            *self.buckets.entry(key).or_insert(0) += n;
        }
        self.zeros += other.zeros;
        self.count += other.count;
        self.maximum = self.maximum.max(other.maximum);
    }

    /// The q-quantile (0..1) as the upper bound of its bucket, capped at the maximum.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        if rank <= self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for (&key, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(GROWTH.powf(f64::from(key + 1)).min(self.maximum));
            }
        }
        Some(self.maximum)
    }

    pub fn write(&self, out: &mut Writer) {
        out.u64(self.zeros);
        out.u64(self.count);
        out.f64(self.maximum);
        out.u32(self.buckets.len() as u32);
        for (&key, &n) in &self.buckets {
            out.u32(key as u32);
            out.u64(n);
        }
    }

    pub fn read(input: &mut Reader<'_>) -> Result<Self, StateError> {
        let mut sketch = Self {
            zeros: input.u64()?,
            count: input.u64()?,
            maximum: input.f64()?,
            ..Self::default()
        };
        let n = input.count(12)?;
        for _ in 0..n {
            let key = input.u32()? as i32;
            sketch.buckets.insert(key, input.u64()?);
        }
        let counted: u64 = sketch.buckets.values().sum::<u64>() + sketch.zeros;
        if counted != sketch.count {
            return Err(StateError::new("sketch counts do not add up"));
        }
        Ok(sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent_of_a_value() {
        let mut sketch = LogHistogram::default();
        for i in 1..=1000 {
            sketch.add(f64::from(i));
        }
        let p50 = sketch.quantile(0.5).unwrap();
        assert!((p50 / 500.0 - 1.0).abs() < 0.02, "{p50}");
        assert_eq!(sketch.quantile(1.0), Some(1000.0));
        assert_eq!(LogHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn zeros_negatives_and_nan_count_as_zero() {
        let mut sketch = LogHistogram::default();
        for v in [0.0, -3.0, f64::NAN, 5.0] {
            sketch.add(v);
        }
        assert_eq!((sketch.zeros, sketch.count), (3, 4));
        assert_eq!(sketch.quantile(0.5), Some(0.0));
    }

    #[test]
    fn two_parts_merge_into_the_sketch_of_all() {
        let values: Vec<f64> = (0..500).map(|i| f64::from(i % 97) * 1.7).collect();
        let mut all = LogHistogram::default();
        values.iter().for_each(|&v| all.add(v));
        let (mut left, mut right) = (LogHistogram::default(), LogHistogram::default());
        values[..123].iter().for_each(|&v| left.add(v));
        values[123..].iter().for_each(|&v| right.add(v));
        left.merge(&right);
        assert_eq!(left, all);
        let mut out = Writer::default();
        all.write(&mut out);
        let bytes = out.finish();
        assert_eq!(LogHistogram::read(&mut Reader::new(&bytes)).unwrap(), all);
        let mut bad = bytes.clone();
        bad[8] ^= 1; // count no longer matches the buckets
        assert!(LogHistogram::read(&mut Reader::new(&bad)).is_err());
    }
}
