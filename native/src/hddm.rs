//! HDDM with the A-test (Frias-Blanco et al., 2014) for a 0/1 error stream: the drift test of
//! river's `drift.binary.HDDMA` (one-sided: the error rate went up), signalling at the same
//! updates (checked against river in the Python tests).

use crate::state::{Reader, StateError, Writer};

/// One HDDM_A detector.
#[derive(Clone, Debug, PartialEq)]
pub struct Hddma {
    confidence: f64,
    n: u64,
    mean: f64,
    min_n: u64,
    min_mean: f64,
    /// The last update signalled a drift (the next one starts again).
    pub drift_detected: bool,
}

impl Hddma {
    /// A detector at `drift_confidence` (river's default is 0.001).
    pub fn new(drift_confidence: f64) -> Self {
        Self {
            confidence: drift_confidence,
            n: 0,
            mean: 0.0,
            min_n: 0,
            min_mean: 0.0,
            drift_detected: false,
        }
    }

    /// Add outcomes in order (1 = error); the indices after which a drift was signalled.
    pub fn update_many(&mut self, values: &[f64]) -> Vec<usize> {
        let log_drift = (2.0 / self.confidence).ln();
        let bound = (1.0 / self.confidence).ln();
        let mut fired = Vec::new();
        for (i, &x) in values.iter().enumerate() {
            if self.drift_detected {
                (self.n, self.mean, self.min_n, self.min_mean) = (0, 0.0, 0, 0.0);
            }
            self.n += 1;
            let n = self.n as f64;
            self.mean += (1.0 / n) * (x - self.mean);
            if self.min_n == 0 {
                (self.min_n, self.min_mean) = (self.n, self.mean);
            }
            let eps = (1.0 / (2.0 * n) * bound).sqrt();
            let min_eps = (1.0 / (2.0 * self.min_n as f64) * bound).sqrt();
            if self.min_mean + min_eps >= self.mean + eps {
                (self.min_n, self.min_mean) = (self.n, self.mean);
            }
            self.drift_detected = false;
            if self.min_n != self.n {
                let min_n = self.min_n as f64;
                let m = (n - min_n) / min_n * (1.0 / n);
                if self.mean - self.min_mean >= (m / 2.0 * log_drift).sqrt() {
                    self.drift_detected = true;
                    fired.push(i);
                }
            }
        }
        fired
    }

    /// Write the state.
    pub fn write(&self, out: &mut Writer) {
        out.f64(self.confidence);
        out.u64(self.n);
        out.f64(self.mean);
        out.u64(self.min_n);
        out.f64(self.min_mean);
        out.bool(self.drift_detected);
    }

    /// Read a state written by [`Hddma::write`].
    pub fn read(input: &mut Reader<'_>) -> Result<Self, StateError> {
        Ok(Self {
            confidence: input.f64()?,
            n: input.u64()?,
            mean: input.f64()?,
            min_n: input.u64()?,
            min_mean: input.f64()?,
            drift_detected: input.bool()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_error_rate_is_signalled() {
        let mut detector = Hddma::new(1e-6);
        let calm: Vec<f64> = (0..2_000).map(|i| f64::from(i % 10 == 0)).collect();
        assert!(detector.update_many(&calm).is_empty());
        let worse: Vec<f64> = (0..2_000).map(|i| f64::from(i % 2 == 0)).collect();
        assert!(!detector.update_many(&worse).is_empty());
    }

    #[test]
    fn state_round_trips() {
        let mut detector = Hddma::new(1e-3);
        detector.update_many(&[0.0, 1.0, 1.0, 0.0]);
        let mut out = Writer::default();
        detector.write(&mut out);
        let bytes = out.finish();
        assert_eq!(Hddma::read(&mut Reader::new(&bytes)).unwrap(), detector);
    }
}
