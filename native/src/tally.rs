//! Counts per bin, two bytes a bin while every count fits in 16 bits and four once one does
//! not: a window of up to 65,535 events, and a reference learnt from as many, keep their bins
//! in half the memory.
//!
//! The width is storage only: every count reads as a `u32`, and two tallies merge by adding
//! whatever their widths.

/// The counts of a row of bins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tally {
    Narrow(Box<[u16]>),
    Wide(Box<[u32]>),
}

impl Default for Tally {
    fn default() -> Self {
        Tally::Narrow(Box::default())
    }
}

impl Tally {
    /// `n` empty bins.
    pub fn zeros(n: usize) -> Self {
        Tally::Narrow(vec![0; n].into_boxed_slice())
    }

    /// Bins holding `counts`, narrow when every count fits.
    pub fn from_counts(counts: &[u32]) -> Self {
        match counts
            .iter()
            .map(|&c| u16::try_from(c))
            .collect::<Result<Box<[u16]>, _>>()
        {
            Ok(narrow) => Tally::Narrow(narrow),
            Err(_) => Tally::Wide(counts.into()),
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
            Tally::Narrow(b) => b.len(),
            Tally::Wide(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The count of bin `i` (0 beyond the last bin).
    pub fn get(&self, i: usize) -> u32 {
        match self {
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
        if let Tally::Narrow(bins) = self {
            match bins.get_mut(i) {
                None => return,
                Some(count) => {
                    if let Ok(sum) = u16::try_from(u32::from(*count) + n) {
                        *count = sum;
                        return;
                    }
                }
            }
            self.widen();
        }
        if let Tally::Wide(bins) = self {
            if let Some(count) = bins.get_mut(i) {
                *count = count.saturating_add(n);
            }
        }
    }

    fn widen(&mut self) {
        if let Tally::Narrow(bins) = self {
            *self = Tally::Wide(bins.iter().map(|&c| u32::from(c)).collect());
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
    fn counts_widen_past_sixteen_bits_and_keep_their_values() {
        let mut tally = Tally::zeros(3);
        tally.add(1, 65_535);
        assert!(matches!(tally, Tally::Narrow(_)));
        tally.increment(1);
        tally.increment(2);
        tally.increment(7); // beyond the last bin: ignored
        assert!(matches!(tally, Tally::Wide(_)));
        assert_eq!(tally.counts(), vec![0, 65_536, 1]);
        tally.add(1, u32::MAX);
        assert_eq!(tally.get(1), u32::MAX);
    }

    #[test]
    fn tallies_of_two_parts_merge_into_the_tally_of_all() {
        let mut wide = Tally::from_counts(&[70_000, 0, 3]);
        assert!(matches!(wide, Tally::Wide(_)));
        let narrow = Tally::from_counts(&[1, 2, 3]);
        assert!(matches!(narrow, Tally::Narrow(_)));
        wide.merge(&narrow);
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
