//! The change detectors of a model's signals (ADWIN and Page-Hinkley on block means of each
//! value's normal score in its reference) and a run's values binned once for all of them.

use crate::adwin::Adwin;

/// Page-Hinkley with river's arithmetic and the parameters the Python side used
/// (min_instances 100, delta 0.05, threshold 50, alpha 1 - 1e-4, both directions).
#[derive(Clone, Debug, PartialEq)]
pub struct PageHinkley {
    pub n: f64,
    pub mean: f64,
    pub sum_increase: f64,
    pub sum_decrease: f64,
    pub min_increase: f64,
    pub max_decrease: f64,
    pub drift_detected: bool,
}

impl Default for PageHinkley {
    fn default() -> Self {
        Self {
            n: 0.0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: f64::INFINITY,
            max_decrease: -1.0,
            drift_detected: false,
        }
    }
}

impl PageHinkley {
    const MIN_INSTANCES: f64 = 100.0;
    const DELTA: f64 = 0.05;
    const THRESHOLD: f64 = 50.0;
    const ALPHA: f64 = 1.0 - 0.0001;

    pub fn update(&mut self, x: f64) -> bool {
        if self.drift_detected {
            *self = Self::default();
        }
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
        let deviation = x - self.mean;
        self.sum_increase = Self::ALPHA * self.sum_increase + deviation - Self::DELTA;
        self.sum_decrease = Self::ALPHA * self.sum_decrease + deviation + Self::DELTA;
        if self.sum_increase < self.min_increase {
            self.min_increase = self.sum_increase;
        }
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.n >= Self::MIN_INSTANCES {
            self.drift_detected = self.sum_increase - self.min_increase > Self::THRESHOLD
                || self.max_decrease - self.sum_decrease > Self::THRESHOLD;
        }
        self.drift_detected
    }
}

const CLAMP: f64 = 1e9;

/// The change-detection algorithm of a [`Detector`].
#[derive(Clone, Debug)]
pub enum Algorithm {
    Adwin(Adwin),
    PageHinkley(PageHinkley),
}

/// A change detector fed standardised block means of one signal.
#[derive(Clone, Debug)]
pub struct Detector {
    pub algorithm: Algorithm,
    pub mean: f64,
    pub scale: f64,
    pub block: u32,
    pub total: f64,
    pub filled: u32,
    pub detections: u64,
}

impl Detector {
    /// `name`: "adwin" or "page_hinkley".
    pub fn new(name: &str, delta: f64, mean: f64, std: f64, block: u32) -> Option<Self> {
        let block = block.max(1);
        let algorithm = match name {
            "adwin" => Algorithm::Adwin(Adwin::new(delta, (32 / block).max(1))),
            "page_hinkley" => Algorithm::PageHinkley(PageHinkley::default()),
            _ => return None,
        };
        Some(Self {
            algorithm,
            mean,
            scale: if std > 0.0 { 1.0 / std } else { 1.0 },
            block,
            total: 0.0,
            filled: 0,
            detections: 0,
        })
    }

    /// Feed one value; true when a completed block makes the detector signal a change.
    pub fn update(&mut self, value: f64) -> bool {
        self.total += value;
        self.filled += 1;
        if self.filled < self.block {
            return false;
        }
        let mean = self.total / f64::from(self.filled);
        self.total = 0.0;
        self.filled = 0;
        let mut standardised = (mean - self.mean) * self.scale;
        if !standardised.is_finite() {
            if standardised.is_nan() {
                return false;
            }
            standardised = CLAMP.copysign(standardised);
        }
        let x = standardised.clamp(-CLAMP, CLAMP);
        let fired = match &mut self.algorithm {
            Algorithm::Adwin(adwin) => adwin.update(x),
            Algorithm::PageHinkley(ph) => ph.update(x),
        };
        if fired {
            self.detections += 1;
        }
        fired
    }
}

/// The detectors of one signal: a feature (`slot`) or the prediction signal (`None`).
#[derive(Clone, Debug)]
pub struct Signal {
    pub slot: Option<usize>,
    /// Boxed: a collected `Vec` of a filtered iterator would keep room for four.
    pub detectors: Box<[Detector]>,
}

/// What the prediction signal of a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalKind {
    Score,
    Prediction,
}
