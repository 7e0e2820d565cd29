//! Counts per bin in the fewest bytes that hold them: one byte a bin while every count fits in
//! 8 bits, two while they fit in 16, four beyond. A window of 1,000 events over 100 percentile
//! bins, and a reference learnt from as many, hold about 10 a bin: a byte each.
//!
//! The width is storage only: every count reads as a `u32`, a count that outgrows its width
//! widens the whole tally, and two tallies merge by adding whatever their widths.

/// The counts of a row of bins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tally {
    Small(Box<[u8]>),
    Narrow(Box<[u16]>),
    Wide(Box<[u32]>),
}

impl Default for Tally {
    fn default() -> Self {
        Tally::Small(Box::default())
    }
}

impl Tally {
    /// `n` empty bins.
    pub fn zeros(n: usize) -> Self {
        Tally::Small(vec![0; n].into_boxed_slice())
    }

    /// Bins holding `counts`, in the narrowest width that holds them all.
    pub fn from_counts(counts: &[u32]) -> Self {
        let largest = counts.iter().copied().max().unwrap_or(0);
        if let Ok(small) = counts.iter().map(|&c| u8::try_from(c)).collect() {
            Tally::Small(small)
        } else if u16::try_from(largest).is_ok() {
            Tally::Narrow(counts.iter().map(|&c| c as u16).collect())
        } else {
            Tally::Wide(counts.into())
        }
    }

    /// Bins from counts given as floats; `None` unless each is a whole number in `u32`'s range.
    pub fn from_f64s(counts: &[f64]) -> Option<Self> {
        let whole = counts
            .iter()
            .map(|&c| {
                (c.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&c)).then_some(c as u32)
            })
            .collect::<Option<Vec<u32>>>()?;
        Some(Self::from_counts(&whole))
    }

    pub fn len(&self) -> usize {
        match self {
            Tally::Small(b) => b.len(),
            Tally::Narrow(b) => b.len(),
            Tally::Wide(b) => b.len(),
        }
    }

    /// Bytes the counts take on the heap.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Tally::Small(b) => b.len(),
            Tally::Narrow(b) => 2 * b.len(),
            Tally::Wide(b) => 4 * b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The count of bin `i` (0 beyond the last bin).
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Tally::Small(b) => b.get(i).map_or(0, |&c| u32::from(c)),
            Tally::Narrow(b) => b.get(i).map_or(0, |&c| u32::from(c)),
            Tally::Wide(b) => b.get(i).copied().unwrap_or(0),
        }
    }

    /// Every count, in order.
    pub fn counts(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// Every count as a float, as the statistics take them.
    pub fn f64s(&self) -> Vec<f64> {
        (0..self.len()).map(|i| f64::from(self.get(i))).collect()
    }

    /// Count one more in bin `i` (nothing beyond the last bin); saturates at `u32::MAX`.
    #[inline]
    pub fn increment(&mut self, i: usize) {
        self.add(i, 1);
    }

    /// Count `n` more in bin `i` (nothing beyond the last bin); saturates at `u32::MAX`.
    #[inline]
    pub fn add(&mut self, i: usize, n: u32) {
        if i >= self.len() {
            return;
        }
        if let Tally::Small(bins) = self {
            match u8::try_from(u32::from(bins[i]) + n) {
                Ok(sum) => return bins[i] = sum,
                Err(_) => self.widen(),
            }
        }
        if let Tally::Narrow(bins) = self {
            match u16::try_from(u32::from(bins[i]) + n) {
                Ok(sum) => return bins[i] = sum,
                Err(_) => self.widen(),
            }
        }
        if let Tally::Wide(bins) = self {
            bins[i] = bins[i].saturating_add(n);
        }
    }

    /// The next width up, counts unchanged.
    fn widen(&mut self) {
        match self {
            Tally::Small(bins) => {
                *self = Tally::Narrow(bins.iter().map(|&c| u16::from(c)).collect())
            }
            Tally::Narrow(bins) => {
                *self = Tally::Wide(bins.iter().map(|&c| u32::from(c)).collect())
            }
            Tally::Wide(_) => {}
        }
    }

    /// Add the counts of another tally of the same bins (of a disjoint part of the values).
    pub fn merge(&mut self, other: &Tally) {
        for i in 0..other.len() {
            let n = other.get(i);
            if n > 0 {
                self.add(i, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_widen_past_eight_then_sixteen_bits_and_keep_their_values() {
        let mut tally = Tally::zeros(3);
        tally.add(1, 255);
        assert!(matches!(tally, Tally::Small(_)));
        tally.increment(0);
        tally.increment(1);
        assert!(matches!(tally, Tally::Narrow(_)));
        assert_eq!(tally.counts(), vec![1, 256, 0]);
        tally.add(1, 65_535 - 256);
        assert!(matches!(tally, Tally::Narrow(_)));
        tally.increment(1);
        tally.increment(2);
        tally.increment(7); // beyond the last bin: ignored
        assert!(matches!(tally, Tally::Wide(_)));
        assert_eq!(tally.counts(), vec![1, 65_536, 1]);
        tally.add(1, u32::MAX);
        assert_eq!(tally.get(1), u32::MAX);
    }

    #[test]
    fn tallies_of_two_parts_merge_into_the_tally_of_all() {
        let mut wide = Tally::from_counts(&[70_000, 0, 3]);
        assert!(matches!(wide, Tally::Wide(_)));
        let small = Tally::from_counts(&[1, 2, 3]);
        assert!(matches!(small, Tally::Small(_)));
        assert!(matches!(Tally::from_counts(&[300, 2]), Tally::Narrow(_)));
        wide.merge(&small);
        assert_eq!(wide.counts(), vec![70_001, 2, 6]);
        let mut left = Tally::from_counts(&[65_000, 1]);
        left.merge(&Tally::from_counts(&[1_000, 1]));
        assert_eq!(left.counts(), vec![66_000, 2]);
    }

    #[test]
    fn float_counts_must_be_whole_and_in_range() {
        assert_eq!(
            Tally::from_f64s(&[1.0, 2.0]).map(|t| t.counts()),
            Some(vec![1, 2])
        );
        assert_eq!(Tally::from_f64s(&[1.5]), None);
        assert_eq!(Tally::from_f64s(&[-1.0]), None);
        assert_eq!(Tally::from_f64s(&[f64::NAN]), None);
        assert_eq!(Tally::from_f64s(&[5e9]), None);
        assert!(Tally::from_f64s(&[]).is_some_and(|t| t.is_empty()));
    }
}
