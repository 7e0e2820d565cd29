//! A small, mergeable, deterministic quantile sketch for latencies and lags.
//!
//! Values land in logarithmic buckets 2% wide, so any quantile is reported within 2% of an
//! observed value, with memory bounded by the value range, not by the number of values.
//!
//! The buckets are a dense row of counts from the lowest bucket used to the highest, in the
//! fewest bytes a count needs ([`Tally`]): latencies from 0.01 ms to 100 s take about 800
//! buckets, under a kilobyte. The row spans at most [`SPAN`] buckets (values down to 4e17 times
//! smaller than the largest); the buckets of smaller values are kept aside, one entry each. The
//! layout depends only on the buckets used, so the order of values, and merging parts, give the
//! same sketch.

use crate::state::{Reader, StateError, Writer};
use crate::tally::Tally;

const GROWTH: f64 = 1.02;

/// Buckets a sketch spans at most.
pub const SPAN: i32 = 2_048;

/// Counts of non-negative values in 2%-wide logarithmic buckets (zero has its own bucket).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogHistogram {
    /// The bucket of `bins[0]`.
    low: i32,
    /// Counts of buckets `low`, `low + 1`, ... up to the highest bucket used.
    bins: Tally,
    /// Buckets used below the row's span, lowest first.
    far: Vec<(i32, u32)>,
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
        self.add_to(key, 1);
    }

    /// Bytes the sketch takes on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.bins.heap_bytes() + self.far.capacity() * std::mem::size_of::<(i32, u32)>()
    }

    /// The highest bucket used (`low - 1` when none is).
    fn high(&self) -> i32 {
        self.low + self.bins.len() as i32 - 1
    }

    /// Count `n` more in bucket `key`.
    fn add_to(&mut self, key: i32, n: u32) {
        if !self.bins.is_empty() && (self.low..=self.high()).contains(&key) {
            return self.bins.add((key - self.low) as usize, n);
        }
        if !self.bins.is_empty() && key < self.high().saturating_sub(SPAN - 1) {
            return match self.far.binary_search_by_key(&key, |&(k, _)| k) {
                Ok(at) => self.far[at].1 = self.far[at].1.saturating_add(n),
                Err(at) => self.far.insert(at, (key, n)),
            };
        }
        // The row grows: lay every bucket out again (the highest decides what is far).
        let mut used: Vec<(i32, u32)> = self.buckets().collect();
        used.push((key, n));
        used.sort_unstable_by_key(|&(k, _)| k);
        let high = used[used.len() - 1].0;
        let floor = high.saturating_sub(SPAN - 1);
        let near = used.partition_point(|&(k, _)| k < floor);
        self.low = used[near].0;
        let mut counts = vec![0u32; (high - self.low + 1) as usize];
        for &(k, c) in &used[near..] {
            let at = (k - self.low) as usize;
            counts[at] = counts[at].saturating_add(c);
        }
        self.bins = Tally::from_counts(&counts);
        // Only what is far stays aside (not the room of every bucket collected above).
        self.far = used[..near].to_vec();
    }

    /// The buckets used and their counts, lowest first.
    fn buckets(&self) -> impl Iterator<Item = (i32, u32)> + '_ {
        let row = (0..self.bins.len())
            .map(|i| (self.low + i as i32, self.bins.get(i)))
            .filter(|&(_, n)| n > 0);
        self.far.iter().copied().chain(row)
    }

    /// Add the counts of another sketch (of a disjoint part of the same values).
    pub fn merge(&mut self, other: &Self) {
        for (key, n) in other.buckets() {
            self.add_to(key, n);
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
        for (key, n) in self.buckets() {
            seen += u64::from(n);
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
        out.u32(self.buckets().count() as u32);
        for (key, n) in self.buckets() {
            out.u32(key as u32);
            out.u64(u64::from(n));
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
        let mut counted = sketch.zeros;
        for _ in 0..n {
            let key = input.u32()? as i32;
            let Ok(k) = u32::try_from(input.u64()?) else {
                return Err(StateError::new("sketch bucket count out of range"));
            };
            sketch.add_to(key, k);
            counted = counted.saturating_add(u64::from(k));
        }
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
    fn memory_is_the_row_of_buckets_used() {
        // Values spread over 2 decades, lowest last: the row is laid out again as it grows.
        let mut sketch = LogHistogram::default();
        for i in (1..=500).rev() {
            sketch.add(f64::from(i) * 0.2);
        }
        let row = sketch.bins.len();
        assert!(sketch.far.is_empty());
        // one byte per bucket (each count is under 256) and no room kept aside for far buckets
        assert_eq!(sketch.heap_bytes(), row);
        let key = |v: f64| (v.ln() / GROWTH.ln()).floor() as i32;
        assert_eq!(row as i32, key(100.0) - key(0.2) + 1);
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

    #[test]
    fn the_row_spans_the_buckets_used_and_no_more_than_its_bound() {
        let mut sketch = LogHistogram::default();
        for v in [10.0, 10.1, 11.0, 9.5] {
            sketch.add(v);
        }
        // 9.5 to 11: buckets 113 to 121, one byte each
        assert_eq!((sketch.low, sketch.bins.len()), (113, 9));
        assert!(matches!(sketch.bins, Tally::Small(_)));
        // A value far below the span is kept aside, whatever the order
        let mut late = sketch.clone();
        late.add(1e-300);
        late.add(1e300);
        let mut early = LogHistogram::default();
        for v in [1e300, 1e-300, 10.0, 10.1, 11.0, 9.5] {
            early.add(v);
        }
        assert_eq!(late, early);
        assert_eq!(early.bins.len(), 1);
        assert_eq!(early.far.len(), 4); // 1e-300, 9.5, 10 and 10.1, 11
        let lowest = early.quantile(0.0).unwrap();
        assert!(lowest / 1e-300 < GROWTH && lowest >= 1e-300, "{lowest}");
        assert_eq!(early.quantile(0.5), Some(GROWTH.powf(f64::from(116 + 1))));
        let mut out = Writer::default();
        early.write(&mut out);
        let bytes = out.finish();
        assert_eq!(LogHistogram::read(&mut Reader::new(&bytes)).unwrap(), early);
    }
}
