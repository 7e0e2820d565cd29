//! ADWIN, adaptive windowing (Bifet & Gavalda, 2007), with the exact arithmetic of river's
//! `drift.ADWIN`, so both signal at the same updates (tests/unit/monitor/test_native.py feeds
//! the same seeded streams to both).
//!
//! The window is kept as rows of buckets: row `i` holds up to 5 buckets (river's
//! `max_buckets`) of `2^i` values each. A full row merges its two oldest buckets into the next
//! row. Every `clock` updates, each split of the window into an older and a newer part is
//! tested; when their means differ by more than the Hoeffding-style bound (which takes the
//! variance of the whole window), a change is signalled. As river's wrapper does, the update
//! after a signal starts again from an empty window.
//!
//! river also keeps each bucket's variance, but reads it only to shrink the window after a cut,
//! within the update that signals; the next update empties that window. So the buckets here
//! keep their totals alone (half the memory), and a signalling update empties the window at once:
//! the signals are river's, update for update.

use crate::state::{exact, Reader, StateError, Writer};

/// Buckets a row holds (river's `max_buckets`).
const MAX_BUCKETS: usize = 5;
/// The smallest sub-window tested (river's `min_window_length`).
const MIN_WINDOW: f64 = 5.0;
/// Values seen before the first test (river's `grace_period`).
const GRACE: f64 = 10.0;

/// One ADWIN detector (river's defaults: 5 buckets a row, minimum sub-window 5, grace 10).
///
/// The rows are stored flat, in the order the test walks them: the highest row first, each row
/// oldest bucket first, so row 0 ends the vector. A new value is a push, a merge replaces two
/// buckets by one, and the detector holds only the buckets it has (8 bytes each).
#[derive(Clone, Debug, PartialEq)]
pub struct Adwin {
    delta: f64,
    clock: u32,
    total: f64,
    variance: f64,
    width: f64,
    tick: u32,
    /// Buckets in row `i` (of `2^i` values each).
    lens: Vec<u8>,
    /// The total of each bucket, highest row first.
    buckets: Vec<f64>,
    /// The last update signalled a change (the next one starts from an empty window).
    pub drift_detected: bool,
}

impl Adwin {
    /// A detector with river's defaults for everything but `delta` and `clock`.
    pub fn new(delta: f64, clock: u32) -> Self {
        Self {
            delta,
            clock: clock.max(1),
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
            lens: vec![0],
            buckets: Vec::new(),
            drift_detected: false,
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.delta, self.clock);
    }

    /// Bytes the buckets take on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.lens.capacity() + self.buckets.capacity() * std::mem::size_of::<f64>()
    }

    /// Values in the window.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// Mean of the window (0 when empty).
    pub fn estimation(&self) -> f64 {
        if self.width > 0.0 {
            self.total / self.width
        } else {
            0.0
        }
    }

    /// Add one value; true when it made the detector signal a change.
    pub fn update(&mut self, value: f64) -> bool {
        if self.drift_detected {
            self.reset();
        }
        self.insert(value);
        self.drift_detected = self.detect();
        self.drift_detected
    }

    /// Where row `i` starts in `buckets`.
    fn start(&self, i: usize) -> usize {
        self.lens[i + 1..].iter().map(|&n| usize::from(n)).sum()
    }

    fn insert(&mut self, value: f64) {
        self.width += 1.0;
        let mut added = 0.0;
        if self.width > 1.0 {
            let gap = value - self.total / (self.width - 1.0);
            added = (self.width - 1.0) * gap * gap / self.width;
        }
        self.variance += added;
        self.total += value;
        self.make_room();
        if self.buckets.len() == self.buckets.capacity() {
            self.buckets.reserve_exact(1);
        }
        self.buckets.push(value);
        self.lens[0] += 1;
    }

    /// Before a value is added: each full row from the first up merges its two oldest buckets
    /// into the next row, highest first. river adds first and merges an overfull row after;
    /// the buckets merged and where they go are the same, but no row ever holds more than
    /// [`MAX_BUCKETS`], and the buckets grow one at a time (they are the detector's memory).
    fn make_room(&mut self) {
        let full = self
            .lens
            .iter()
            .take_while(|&&n| usize::from(n) == MAX_BUCKETS)
            .count();
        if full == self.lens.len() {
            self.lens.reserve_exact(1);
            self.lens.push(0);
        }
        for i in (0..full).rev() {
            let at = self.start(i);
            // Row i + 1 ends where row i starts: the merged bucket becomes its newest.
            self.buckets[at] += self.buckets[at + 1];
            self.buckets.remove(at + 1);
            self.lens[i + 1] += 1;
            self.lens[i] -= 2;
        }
    }

    fn detect(&mut self) -> bool {
        self.tick += 1;
        if self.tick % self.clock != 0 || self.width <= GRACE {
            return false;
        }
        let (mut n0, mut n1) = (0.0, self.width);
        let (mut u0, mut u1) = (0.0, self.total);
        let mut at = 0;
        for i in (0..self.lens.len()).rev() {
            let size = (1u64 << i) as f64;
            let count = usize::from(self.lens[i]);
            for k in 0..count {
                n0 += size;
                n1 -= size;
                let t = self.buckets[at];
                at += 1;
                u0 += t;
                u1 -= t;
                if i == 0 && k == count - 1 {
                    return false;
                }
                if n1 >= MIN_WINDOW && n0 >= MIN_WINDOW && self.cut(n0, n1, u0 / n0 - u1 / n1) {
                    // river drops the oldest buckets and tests again, but the next update
                    // starts from an empty window whatever it dropped.
                    self.reset();
                    return true;
                }
            }
        }
        false
    }

    fn cut(&self, n0: f64, n1: f64, gap: f64) -> bool {
        let log_term = (2.0 * self.width.ln() / self.delta).ln();
        let harmonic = 1.0 / (n0 - MIN_WINDOW + 1.0) + 1.0 / (n1 - MIN_WINDOW + 1.0);
        let bound = (2.0 * harmonic * (self.variance / self.width) * log_term).sqrt()
            + 2.0 / 3.0 * log_term * harmonic;
        gap.abs() > bound
    }

    /// Write the state (see `state`).
    pub fn write(&self, out: &mut Writer) {
        out.f64(self.delta);
        out.u32(self.clock);
        out.f64(self.total);
        out.f64(self.variance);
        out.f64(self.width);
        out.u32(self.tick);
        out.bool(self.drift_detected);
        out.u32(self.lens.len() as u32);
        for i in 0..self.lens.len() {
            let at = self.start(i);
            out.f64s(&self.buckets[at..at + usize::from(self.lens[i])]);
        }
    }

    /// Read a state written by [`Adwin::write`].
    pub fn read(input: &mut Reader<'_>) -> Result<Self, StateError> {
        let mut adwin = Self::new(input.f64()?, input.u32()?);
        adwin.total = input.f64()?;
        adwin.variance = input.f64()?;
        adwin.width = input.f64()?;
        adwin.tick = input.u32()?;
        adwin.drift_detected = input.bool()?;
        let rows = input.u32()? as usize;
        if rows == 0 || rows > 64 {
            return Err(StateError::new("ADWIN rows out of range"));
        }
        let rows: Vec<Vec<f64>> = exact(rows, || {
            let totals = input.f64s()?;
            if totals.len() > MAX_BUCKETS {
                return Err(StateError::new("ADWIN row of a wrong length"));
            }
            Ok(totals)
        })?;
        adwin.lens = rows.iter().map(|row| row.len() as u8).collect();
        let mut buckets = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        rows.iter()
            .rev()
            .for_each(|row| buckets.extend_from_slice(row));
        adwin.buckets = buckets;
        Ok(adwin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_stream_never_signals() {
        let mut adwin = Adwin::new(0.002, 32);
        for _ in 0..5_000 {
            assert!(!adwin.update(1.0));
        }
        assert_eq!(adwin.estimation(), 1.0);
    }

    #[test]
    fn a_large_shift_is_signalled_then_the_window_restarts() {
        let mut adwin = Adwin::new(0.01, 32);
        for _ in 0..200 {
            adwin.update(0.0);
        }
        let at = (0..200).position(|_| adwin.update(100.0));
        assert!(at.is_some(), "a shift of 100 must be signalled");
        adwin.update(100.0);
        assert_eq!(
            adwin.width(),
            1.0,
            "the update after a signal starts a new window"
        );
    }

    #[test]
    fn state_round_trips() {
        let mut adwin = Adwin::new(1e-6, 32);
        for i in 0..1_000 {
            adwin.update(f64::from(i % 7));
        }
        let mut out = Writer::default();
        adwin.write(&mut out);
        let bytes = out.finish();
        let back = Adwin::read(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(back, adwin);
        // buckets are the detector's memory: grown one at a time, restored at their exact size
        assert_eq!(back.buckets.capacity(), back.buckets.len());
        assert!(adwin.buckets.capacity() <= adwin.lens.len() * MAX_BUCKETS);
        assert_eq!(back.lens, adwin.lens);
        assert!(Adwin::read(&mut Reader::new(&bytes[..bytes.len() - 3])).is_err());
    }
}
