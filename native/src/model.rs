//! The per-model state of the batch core: windows, accumulators, change detectors, warm-up.
//!
//! A [`ModelCore`] takes a model's decoded events in order and does everything that happens per
//! event: splitting them into runs that fall into the same windows, counting every run into its
//! windows (bins on the reference edges, categorical counts, data-quality counters, lags and
//! latencies), feeding the change detectors, and collecting the warm-up sample. It stops where
//! the Python side has to decide something before the next event may be counted: when a window
//! closes (the rules may start a new warm-up) and when a warm-up ends (the reference is learnt
//! from the sample). The outputs are the same for any batching: runs end where windows close,
//! where the warm-up ends and where the model version changes, exactly as event by event.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::columns::{Binned, Cell, RunBins};
use crate::decode::Prediction;
use crate::detectors::{Algorithm, Detector, Signal, SignalKind};
use crate::features::{CategoricalRef, Kind, NumericRef, Reference};
use crate::interned::{shared, Pool};
use crate::joint::{Joint, JointRef};
use crate::sketch::LogHistogram;
use crate::warmup::Warmup;
use crate::window_acc::Acc;
use crate::windows::{Bounds, Window, Windows};

/// A detector signal at an event of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Index of the event in the run.
    pub position: usize,
    /// Order of the (signal, detector) pair among the model's detectors.
    pub order: usize,
    pub detector: usize,
    /// The detector's detections so far, this one included.
    pub detections: u64,
}

/// The standardised rows of a run's complete events (all joint features present), their
/// positions in the run, and the row width (None without a joint reference).
#[derive(Default)]
struct JointRows {
    values: Vec<f64>,
    width: Option<usize>,
    positions: Vec<usize>,
}

/// What the Python side needs of one run.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// Indices of the run's events in the model's events of this batch.
    pub start: usize,
    pub len: usize,
    pub keys: Vec<i64>,
    /// (count, first event time) of each window in `keys` before the run.
    pub before: Vec<(u64, Option<i64>)>,
    pub hits: Vec<Hit>,
    /// Where the model version changed in the run: (index in the run, version from there on),
    /// the first entry at index 0 (the version the run started with); empty without a change.
    pub versions: Vec<(usize, Option<String>)>,
    /// The last open window after the run, with its count and first time then.
    pub last_open: Option<(i64, u64, Option<i64>)>,
}

/// Where a step stopped.
#[derive(Debug)]
pub enum Pause {
    /// Window `key` closed: its accumulators, for the summary and the rules.
    Close {
        key: i64,
        bounds: Bounds,
        window: Box<Window>,
        late: u64,
    },
    /// The warm-up is complete: its sample, to learn the reference from.
    Warmup(Box<Warmup>),
    /// Every event of the batch is counted.
    Done,
}

/// The configuration a model core needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub warmup_events: u64,
    /// Features declared categorical, in the order the Python side lists them.
    pub categorical: Vec<String>,
    /// Detector names per signal ("adwin", "page_hinkley"), in order.
    pub detector_names: Vec<String>,
    pub detector_delta: f64,
    pub detector_block: u32,
}

impl Config {
    /// The configured detectors of one signal, standardising with `mean` and `std`.
    fn detectors(&self, mean: f64, std: f64) -> Box<[Detector]> {
        self.detector_names
            .iter()
            .filter_map(|name| {
                Detector::new(name, self.detector_delta, mean, std, self.detector_block)
            })
            .collect()
    }
}

/// The per-event state of one model.
#[derive(Clone, Debug)]
pub struct ModelCore {
    pub config: Config,
    pub windows: Windows,
    /// The kinds of the monitored features, named in order by `names`.
    pub kinds: Vec<Kind>,
    pub names: Arc<Vec<String>>,
    /// The reference of each feature (when learnt), and of the prediction signal.
    pub references: Vec<Option<Reference>>,
    pub prediction_ref: Option<(Kind, Reference)>,
    /// How events are standardised for the joint moments (multivariate drift), when on.
    pub joint_ref: Option<JointRef>,
    /// Detectors on each complete event's reconstruction error (with a joint reference); their
    /// signals come after the other signals' (`Hit::order`).
    pub joint_detectors: Box<[Detector]>,
    /// The first event (standardised) of a pair the joint detectors wait to complete.
    pub joint_half: Option<Vec<f64>>,
    pub signal: Option<SignalKind>,
    pub signals: Vec<Signal>,
    pub warmup: Option<Warmup>,
    /// Open windows in the order they opened.
    pub open: Vec<(i64, Window)>,
    pub late: u64,
    pub max_time: Option<i64>,
    pub events: u64,
    pub model_version: Option<String>,
    /// Closes found but not yet handed over (after a warm-up pause).
    pub pending: VecDeque<(i64, Bounds)>,
    /// Progress through the current batch: index of the next event of this model.
    pub cursor: usize,
    /// Event-time path: the run being built (start index) and its keys.
    pub run_start: usize,
    pub run_keys: Vec<i64>,
    pub run_lags: Vec<f64>,
}

/// Feature lists in use, so that models monitoring the same features (a fleet of models of
/// one schema) share one list.
static FEATURE_LISTS: Mutex<Pool<Vec<String>>> = Mutex::new(Pool::new());

/// The shared list of these feature names (made when no model holds one).
pub fn feature_list(names: Vec<String>) -> Arc<Vec<String>> {
    shared(&FEATURE_LISTS, names)
}

/// What the allocator adds to each allocation (its header, rounded), for [`ModelCore::footprint`].
const ALLOCATION: usize = 16;

fn boxed(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes + ALLOCATION
    }
}

fn reference_bytes(reference: &Reference) -> (usize, usize) {
    match reference {
        Reference::Numeric(r) => (
            boxed(r.edges.heap_bytes()),
            boxed(size_of::<NumericRef>())
                + boxed(r.counts.heap_bytes())
                + r.ranks
                    .as_ref()
                    .map_or(0, |ranks| boxed(ranks.heap_bytes())),
        ),
        Reference::Categorical(r) => {
            let strings: usize = r.known.iter().map(|k| boxed(k.len())).sum::<usize>()
                + r.index.keys().map(|k| boxed(k.len())).sum::<usize>();
            let tables = (r.index.capacity() + r.known.capacity()) * (size_of::<String>() + 9)
                + r.counts.capacity() * 8;
            (0, boxed(size_of::<CategoricalRef>()) + strings + tables)
        }
    }
}

fn acc_bytes(acc: &Acc) -> usize {
    match acc {
        Acc::Numeric { bins, .. } | Acc::Categorical { bins, .. } => boxed(bins.heap_bytes()),
    }
}

impl ModelCore {
    /// Approximate bytes of this model's state, by part: what the memory benchmark breaks
    /// down. Shared parts (references held by windows, names) count once.
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        let (mut edges, mut references) = (0, 0);
        for reference in self
            .references
            .iter()
            .flatten()
            .chain(self.prediction_ref.iter().map(|(_, r)| r))
        {
            let (e, r) = reference_bytes(reference);
            edges += e;
            references += r;
        }
        let mut detectors = boxed(self.signals.capacity() * size_of::<Signal>());
        let all = self.signals.iter().map(|s| &s.detectors);
        for group in all.chain(std::iter::once(&self.joint_detectors)) {
            detectors += boxed(group.len() * size_of::<Detector>());
            for detector in group.iter() {
                if let Algorithm::Adwin(adwin) = &detector.algorithm {
                    detectors += adwin.heap_bytes() + 2 * ALLOCATION;
                }
            }
        }
        let mut windows = boxed(self.open.capacity() * size_of::<(i64, Window)>());
        let mut sketches = 0;
        let mut joint = self.joint_ref.as_ref().map_or(0, |r| {
            boxed(r.slots.capacity() * 4)
                + boxed(r.mean.capacity() * 8)
                + boxed(r.inv_sd.capacity() * 8)
                + boxed(r.band.discarded.capacity() * 8)
                + boxed(r.band.correlations.capacity() * 4)
        }) + self
            .joint_half
            .as_ref()
            .map_or(0, |h| boxed(h.capacity() * 8));
        for (_, window) in &self.open {
            joint += window.joint.as_ref().map_or(0, |j| {
                boxed(j.sums.capacity() * 8) + boxed(j.cross.capacity() * 8)
            });
            windows += boxed(window.features.capacity() * size_of::<Acc>());
            windows += window
                .features
                .iter()
                .chain(window.prediction.iter())
                .map(acc_bytes)
                .sum::<usize>();
            sketches += boxed(window.latency.heap_bytes()) + boxed(window.lag.heap_bytes());
        }
        // A shared feature list counts a share to each holder (models and their open windows).
        let names = (self.names.iter().map(|n| boxed(n.len())).sum::<usize>()
            + boxed(self.names.capacity() * size_of::<String>()))
            / Arc::strong_count(&self.names).max(1);
        let other = size_of::<Self>()
            + ALLOCATION
            + boxed(self.references.capacity() * size_of::<Option<Reference>>())
            + boxed(self.kinds.capacity())
            + boxed(self.pending.capacity() * size_of::<(i64, Bounds)>())
            + boxed(self.run_keys.capacity() * 8)
            + boxed(self.run_lags.capacity() * 8)
            + self
                .config
                .categorical
                .iter()
                .chain(&self.config.detector_names)
                .map(|n| boxed(n.len()))
                .sum::<usize>();
        vec![
            ("edges", edges),
            ("references", references),
            ("detectors", detectors),
            ("windows", windows),
            ("sketches", sketches),
            ("joint", joint),
            ("names", names),
            ("other", other),
        ]
    }
}

impl ModelCore {
    /// A core counting into `windows` (fresh or restored), monitoring `types`.
    pub fn new(config: Config, windows: Windows, types: Vec<(String, Kind)>) -> Self {
        let warmup = None;
        let references = vec![None; types.len()];
        let (names, kinds) = types.into_iter().unzip();
        let names = feature_list(names);
        Self {
            names,
            windows,
            config,
            kinds,
            references,
            prediction_ref: None,
            joint_ref: None,
            joint_detectors: Box::new([]),
            joint_half: None,
            signal: None,
            signals: Vec::new(),
            warmup,
            open: Vec::new(),
            late: 0,
            max_time: None,
            events: 0,
            model_version: None,
            pending: VecDeque::new(),
            cursor: 0,
            run_start: 0,
            run_keys: Vec::new(),
            run_lags: Vec::new(),
        }
    }

    /// Use a learnt or loaded reference: the monitored features and kinds, each feature's
    /// reference, the prediction signal and its reference, and the signals watched by change
    /// detectors (features with a numeric reference in order by slot, then the prediction
    /// signal as None). Detectors see each value's normal score in the signal's reference,
    /// standardised with the reference's own mean and spread of them: under no change their
    /// input has the same distribution whatever the feature's shape, and for a normal feature
    /// it is nearly the standardised value itself.
    pub fn set_reference(
        &mut self,
        types: Vec<(String, Kind)>,
        references: Vec<Option<Reference>>,
        signal: SignalKind,
        prediction_ref: Option<(Kind, Reference)>,
        detectors: Vec<Option<usize>>,
    ) {
        let (names, kinds) = types.into_iter().unzip();
        self.names = feature_list(names);
        self.kinds = kinds;
        self.references = references;
        self.signal = Some(signal);
        self.prediction_ref = prediction_ref;
        let signals = detectors
            .into_iter()
            .map(|slot| {
                let (mean, variance) = self
                    .numeric_reference(slot)
                    .and_then(|r| r.ranks.as_ref())
                    .map_or((0.0, 0.0), |r| (r.normal_mean, r.normal_variance));
                Signal {
                    slot,
                    detectors: self.config.detectors(mean, variance.sqrt()),
                }
            })
            .collect();
        self.signals = signals;
    }

    /// The numeric reference of a feature slot, or of the prediction signal (None).
    fn numeric_reference(&self, slot: Option<usize>) -> Option<&Arc<NumericRef>> {
        let reference = match slot {
            Some(slot) => self.references.get(slot)?.as_ref(),
            None => self.prediction_ref.as_ref().map(|(_, r)| r),
        };
        match reference? {
            Reference::Numeric(r) => Some(r),
            Reference::Categorical(_) => None,
        }
    }

    /// Start a new warm-up (re-baselining after a resolved drift incident).
    pub fn restart_warmup(&mut self) {
        if self.warmup.is_none() {
            self.warmup = Some(Warmup::new(
                self.config.warmup_events,
                &self.config.categorical,
            ));
        }
    }

    fn new_window(&self) -> Window {
        let features = self
            .kinds
            .iter()
            .zip(&self.references)
            .map(|(kind, reference)| Acc::new(*kind, reference.as_ref()))
            .collect();
        let prediction = match (&self.signal, &self.prediction_ref) {
            (Some(_), Some((kind, reference))) => Some(Acc::new(*kind, Some(reference))),
            _ => None,
        };
        Window {
            names: Arc::clone(&self.names),
            count: 0,
            first: None,
            last: None,
            features,
            prediction,
            latency: LogHistogram::default(),
            lag: LogHistogram::default(),
            joint: self.joint_ref.as_ref().map(|r| Joint::new(r.len())),
        }
    }

    /// Count joint moments with `reference` in windows opened from now on (None: stop), and
    /// watch each event's reconstruction error with the configured detectors (as its normal
    /// score among the held-out half's errors, so its skew makes no false detection).
    pub fn set_joint(&mut self, reference: Option<JointRef>) {
        self.joint_detectors = match &reference {
            None => Box::new([]),
            Some(r) => {
                let ranks = &r.error_ranks;
                self.config
                    .detectors(ranks.normal_mean, ranks.normal_variance.sqrt())
            }
        };
        self.joint_ref = reference;
        self.joint_half = None;
    }

    /// Start a batch: `events` are this model's events of the batch, in order.
    pub fn begin(&mut self) {
        self.cursor = 0;
        self.run_start = 0;
        self.run_keys.clear();
        self.run_lags.clear();
    }

    /// Count events from the cursor until a pause; the runs counted are appended to `runs`.
    pub fn step(&mut self, events: &[&Prediction], runs: &mut Vec<RunRecord>) -> Pause {
        if let Some((key, bounds)) = self.pending.pop_front() {
            return self.close(key, bounds);
        }
        if matches!(self.windows, Windows::Count { .. }) {
            self.step_counted(events, runs)
        } else {
            self.step_timed(events, runs)
        }
    }

    fn step_counted(&mut self, events: &[&Prediction], runs: &mut Vec<RunRecord>) -> Pause {
        while self.cursor < events.len() {
            let Windows::Count { size, count, .. } = self.windows else {
                unreachable!("count windows")
            };
            let mut room = size - count;
            if let Some(w) = &self.warmup {
                room = room.min(w.size - w.count);
            }
            let start = self.cursor;
            let end = (start + room.max(1) as usize).min(events.len());
            self.cursor = end;
            self.events += (end - start) as u64;
            let chunk = &events[start..end];
            let mut latest = self.max_time;
            let lags: Vec<f64> = chunk
                .iter()
                .map(|e| {
                    let lag = match latest {
                        Some(m) if m > e.timestamp => (m - e.timestamp) as f64,
                        _ => 0.0,
                    };
                    latest = Some(latest.map_or(e.timestamp, |m| m.max(e.timestamp)));
                    lag
                })
                .collect();
            let first = chunk.iter().map(|e| e.timestamp).min().unwrap_or(0);
            let last = chunk.iter().map(|e| e.timestamp).max().unwrap_or(0);
            self.max_time = Some(self.max_time.map_or(last, |m| m.max(last)));
            self.windows.take(chunk.len() as u64, first, last);
            let Windows::Count { index: key, .. } = self.windows else {
                unreachable!("count windows")
            };
            let warmed = self.apply(chunk, start, &[key], &lags, runs);
            self.pending.extend(self.windows.closed());
            if warmed {
                return Pause::Warmup(Box::new(self.warmup.take().expect("a warm-up ended")));
            }
            if let Some((key, bounds)) = self.pending.pop_front() {
                return self.close(key, bounds);
            }
        }
        Pause::Done
    }

    fn step_timed(&mut self, events: &[&Prediction], runs: &mut Vec<RunRecord>) -> Pause {
        while self.cursor < events.len() {
            let i = self.cursor;
            let event = events[i];
            self.events += 1;
            let t = event.timestamp;
            let lag = match self.max_time {
                Some(m) if t <= m => (m - t) as f64,
                _ => {
                    self.max_time = Some(t);
                    0.0
                }
            };
            let keys = self.windows.time_open(t);
            if keys.is_empty() {
                self.late += 1;
            }
            if i > self.run_start && keys != self.run_keys {
                self.flush_run(events, i, runs);
            }
            self.run_lags.push(lag);
            self.run_keys = keys;
            self.cursor = i + 1;
            let closed = self.windows.closed();
            let filling = self
                .warmup
                .as_ref()
                .is_some_and(|w| w.count + (self.cursor - self.run_start) as u64 >= w.size);
            if !closed.is_empty() || filling {
                let warmed = self.flush_run(events, self.cursor, runs);
                self.pending.extend(closed);
                if warmed {
                    return Pause::Warmup(Box::new(self.warmup.take().expect("a warm-up ended")));
                }
                if let Some((key, bounds)) = self.pending.pop_front() {
                    return self.close(key, bounds);
                }
            }
        }
        self.flush_run(events, events.len(), runs);
        if let Some(w) = self.warmup.take() {
            if w.count >= w.size {
                return Pause::Warmup(Box::new(w));
            }
            self.warmup = Some(w);
        }
        Pause::Done
    }

    /// Apply the event-time run `run_start..end`; true when it completed the warm-up.
    fn flush_run(&mut self, events: &[&Prediction], end: usize, runs: &mut Vec<RunRecord>) -> bool {
        let start = self.run_start;
        self.run_start = end;
        if end <= start {
            return false;
        }
        let keys = std::mem::take(&mut self.run_keys);
        let lags = std::mem::take(&mut self.run_lags);
        self.apply(&events[start..end], start, &keys, &lags, runs)
    }

    /// The standardised rows of the run's events whose joint features are all numbers, one
    /// after another, and the row width (None without a joint reference).
    #[allow(clippy::needless_range_loop)] // `event` indexes the inner lists of `slots`
    fn joint_rows(&self, binned: &RunBins, events: usize) -> JointRows {
        let Some(reference) = &self.joint_ref else {
            return JointRows::default();
        };
        let width = reference.len();
        // each joint feature's normal score per event (NaN: not a number there)
        let mut scores = Vec::with_capacity(width);
        for &slot in &reference.slots {
            let Some(Some(feature)) = binned.features.get(slot as usize) else {
                return JointRows::default(); // not the features it was made for
            };
            let mut dense = vec![f64::NAN; events];
            if let Some(values) = feature.scores() {
                let column = &feature.column;
                for ((score, &at), &number) in values.zip(&column.positions).zip(&column.detectable)
                {
                    if number {
                        dense[at] = score; // booleans are not numbers to the joint moments
                    }
                }
            }
            scores.push(dense);
        }
        let mut rows = vec![0.0; events * width];
        let mut positions = Vec::with_capacity(events);
        for event in 0..events {
            let kept = positions.len();
            let row = &mut rows[kept * width..(kept + 1) * width];
            if reference.standardise_scores(|i| scores[i][event], row) {
                positions.push(event);
            }
        }
        rows.truncate(positions.len() * width);
        JointRows {
            values: rows,
            width: Some(width),
            positions,
        }
    }

    /// Feed the joint detectors the reconstruction error of each pair of complete events
    /// (taken in turn, not overlapping): the error of their difference over sqrt 2, which has
    /// the events' covariance (so the reference's error band) but not their mean, so a shift
    /// of one feature's mean, which that feature's detectors see, is left out. Their signals,
    /// at the second event of the pair.
    fn joint_detections(&mut self, rows: &JointRows, hits: &mut Vec<Hit>) {
        let (Some(reference), Some(width)) = (&self.joint_ref, rows.width) else {
            return;
        };
        let per_signal = self.config.detector_names.len();
        let base = self.signals.len() * per_signal;
        for (row, &position) in rows.values.chunks_exact(width).zip(&rows.positions) {
            let Some(first) = self.joint_half.take() else {
                self.joint_half = Some(row.to_vec());
                continue;
            };
            let difference: Vec<f64> = first
                .iter()
                .zip(row)
                .map(|(a, b)| (a - b) * std::f64::consts::FRAC_1_SQRT_2)
                .collect();
            let error = reference.error_score(reference.error_of(&difference));
            for (d, detector) in self.joint_detectors.iter_mut().enumerate() {
                if detector.update(error) {
                    hits.push(Hit {
                        position,
                        order: base + d,
                        detector: d,
                        detections: detector.detections,
                    });
                }
            }
        }
    }

    /// Count a run into windows `keys`, feed the detectors, keep warm-up events; true when the
    /// warm-up became complete with this run.
    fn apply(
        &mut self,
        run: &[&Prediction],
        start: usize,
        keys: &[i64],
        lags: &[f64],
        runs: &mut Vec<RunRecord>,
    ) -> bool {
        let versions = self.follow_versions(run);
        let slots = slots_of(&self.names, run);
        let binned = self.binned(run, &slots);
        let rows = self.joint_rows(&binned, run.len());
        let mut before = Vec::with_capacity(keys.len());
        for &key in keys {
            let at = match self.open.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    let window = self.new_window();
                    self.open.push((key, window));
                    self.open.len() - 1
                }
            };
            let window = &mut self.open[at].1;
            before.push((window.count, window.first));
            if Arc::ptr_eq(&window.names, &self.names) {
                add_run(window, run, &slots, self.signal, lags, Some(&binned));
                if let (Some(joint), Some(width)) = (&mut window.joint, rows.width) {
                    for z in rows.values.chunks_exact(width) {
                        joint.add(z);
                    }
                }
            } else {
                // opened under other features (before a reference was learnt)
                let own = slots_of(&window.names, run);
                add_run(window, run, &own, self.signal, lags, None);
            }
        }
        let mut hits = if !self.signals.is_empty() && !keys.is_empty() {
            self.detections(&binned)
        } else {
            Vec::new()
        };
        if !self.joint_detectors.is_empty() && !keys.is_empty() {
            self.joint_detections(&rows, &mut hits);
        }
        let last_open = self.open.last().map(|(k, w)| (*k, w.count, w.first));
        runs.push(RunRecord {
            start,
            len: run.len(),
            keys: keys.to_vec(),
            before,
            hits,
            versions,
            last_open,
        });
        if let Some(warmup) = &mut self.warmup {
            for event in run {
                if warmup.add(event) {
                    return true;
                }
            }
        }
        false
    }

    /// Take the run's model versions: where it changed in the run (see [`RunRecord`]).
    fn follow_versions(&mut self, run: &[&Prediction]) -> Vec<(usize, Option<String>)> {
        let mut versions = Vec::new();
        for (i, event) in run.iter().enumerate() {
            let Some(version) = &event.model_version else {
                continue;
            };
            if self.model_version.as_ref() == Some(version) {
                continue;
            }
            if versions.is_empty() && i > 0 {
                versions.push((0, self.model_version.clone()));
            }
            versions.push((i, Some(version.clone())));
            self.model_version = Some(version.clone());
        }
        versions
    }

    /// Feed each signal's detectors the normal scores of the run's values in its reference.
    fn detections(&mut self, binned: &RunBins) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut order = 0;
        for sig in &mut self.signals {
            let feature = match sig.slot {
                Some(slot) => binned.features.get(slot).and_then(Option::as_ref),
                None => binned.prediction.as_ref(),
            };
            let Some((feature, scores)) = feature.and_then(|f| Some((f, f.scores()?))) else {
                order += sig.detectors.len(); // nothing to rank on: no detection
                continue;
            };
            let scores: Vec<f64> = scores.collect();
            let column = &feature.column;
            for (d, detector) in sig.detectors.iter_mut().enumerate() {
                for ((&value, &position), &keep) in
                    scores.iter().zip(&column.positions).zip(&column.detectable)
                {
                    if keep && detector.update(value) {
                        hits.push(Hit {
                            position,
                            order,
                            detector: d,
                            detections: detector.detections,
                        });
                    }
                }
                order += 1;
            }
        }
        hits
    }

    /// The run's numeric signals read and binned once on their references (see [`Binned`]).
    fn binned(&self, run: &[&Prediction], slots: &[Vec<Cell<'_>>]) -> RunBins {
        let features = slots
            .iter()
            .enumerate()
            .map(|(slot, cells)| {
                let reference = self.numeric_reference(Some(slot))?;
                Some(Binned::of(cells, reference))
            })
            .collect();
        let prediction = self
            .numeric_reference(None)
            .map(|reference| Binned::of(&signal_cells(run, self.signal), reference));
        RunBins {
            features,
            prediction,
        }
    }

    fn close(&mut self, key: i64, bounds: Bounds) -> Pause {
        let window = match self.open.iter().position(|(k, _)| *k == key) {
            Some(at) => self.open.remove(at).1,
            None => self.new_window(),
        };
        let late = std::mem::take(&mut self.late);
        Pause::Close {
            key,
            bounds,
            window: Box::new(window),
            late,
        }
    }

    /// Close every open window (end of a finite stream): the closes, oldest first.
    pub fn flush(&mut self) -> Vec<(i64, Bounds)> {
        self.windows.flush()
    }

    /// Close what the model a segment belongs to closed (segments follow their model's
    /// windows): a count window's events so far, or the time windows the watermark of
    /// `max_time` passed (the model's newest event time, which may be ahead of the segment's).
    pub fn close_through(&mut self, max_time: Option<i64>) -> Vec<(i64, Bounds)> {
        match &mut self.windows {
            Windows::Count { .. } => self.windows.flush(),
            Windows::Time { max_time: own, .. } => {
                if let Some(t) = max_time {
                    if own.is_none_or(|m| t > m) {
                        *own = Some(t);
                    }
                }
                self.windows.closed()
            }
        }
    }

    /// The accumulators of closing window `key` (after [`ModelCore::flush`]).
    pub fn take_window(&mut self, key: i64) -> (Window, u64) {
        let window = match self.open.iter().position(|(k, _)| *k == key) {
            Some(at) => self.open.remove(at).1,
            None => self.new_window(),
        };
        (window, std::mem::take(&mut self.late))
    }
}

/// For each of `names`, each event's value (`Missing` when absent).
fn slots_of<'e>(names: &[String], run: &[&'e Prediction]) -> Vec<Vec<Cell<'e>>> {
    let mut slots: Vec<Vec<Cell<'e>>> = vec![Vec::with_capacity(run.len()); names.len()];
    // Where each feature was found in the last event: events of one producer list their
    // features in one order (not always the monitor's), so one comparison usually finds it.
    let mut hints: Vec<usize> = (0..names.len()).collect();
    for event in run {
        for (slot, name) in names.iter().enumerate() {
            let hint = hints[slot];
            let cell = match event.features.get(hint) {
                Some((n, v)) if **n == **name => Cell::Value(v),
                _ => match event.features.iter().position(|(n, _)| **n == **name) {
                    Some(at) => {
                        hints[slot] = at;
                        Cell::Value(&event.features[at].1)
                    }
                    None => Cell::Missing,
                },
            };
            slots[slot].push(cell);
        }
    }
    slots
}

/// The prediction signal's value of each event.
fn signal_cells<'e>(run: &[&'e Prediction], signal: Option<SignalKind>) -> Vec<Cell<'e>> {
    match signal {
        Some(SignalKind::Score) => run.iter().map(|e| Cell::Score(e.score)).collect(),
        _ => run.iter().map(|e| Cell::Value(&e.prediction)).collect(),
    }
}

fn add_run(
    window: &mut Window,
    run: &[&Prediction],
    slots: &[Vec<Cell<'_>>],
    signal: Option<SignalKind>,
    lags: &[f64],
    binned: Option<&RunBins>,
) {
    window.count += run.len() as u64;
    let first = run.iter().map(|e| e.timestamp).min();
    let last = run.iter().map(|e| e.timestamp).max();
    if let Some(first) = first {
        if window.first.is_none_or(|f| first < f) {
            window.first = Some(first);
        }
    }
    if let Some(last) = last {
        if window.last.is_none_or(|l| last > l) {
            window.last = Some(last);
        }
    }
    for (slot, (acc, cells)) in window.features.iter_mut().zip(slots).enumerate() {
        let column = binned.and_then(|b| b.features.get(slot)?.as_ref());
        acc.add(cells, column);
    }
    // Features that arrived as NaN or Infinity were read as missing: count them non-finite.
    for event in run {
        for name in &event.non_finite {
            if let Some(slot) = window.names.iter().position(|n| n == name) {
                window.features[slot].mark_non_finite();
            }
        }
    }
    if let Some(prediction) = &mut window.prediction {
        let column = binned.and_then(|b| b.prediction.as_ref());
        prediction.add(&signal_cells(run, signal), column);
    }
    for event in run {
        if let Some(latency) = event.latency_ms {
            window.latency.add(latency);
        }
    }
    for &lag in lags {
        window.lag.add(lag);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::columns::NumericColumn;
    use crate::decode::Value;
    use crate::features::Edges;
    use crate::window_acc::{Distribution, Drift, OTHER, UNSEEN};

    #[test]
    fn edges_are_narrow_only_when_exact_and_bin_alike() {
        let exact = vec![-1.5, 0.0, 0.25, 3.0, 1_048_576.0];
        let narrow = Edges::new(exact.clone());
        assert!(matches!(narrow, Edges::Narrow(_)));
        assert_eq!(narrow.to_vec(), exact);
        assert_eq!(narrow.heap_bytes(), 20);
        let wide = Edges::Wide(exact.clone().into_boxed_slice());
        for value in [
            -2.0,
            -1.5,
            -0.1,
            0.0,
            0.2,
            0.25,
            2.9,
            3.0,
            1e30,
            1e31,
            f64::MAX,
        ] {
            assert_eq!(narrow.bin_of(value), wide.bin_of(value), "{value}");
        }
        // 0.1 is no f32, 1e300 is beyond its range: kept as f64
        assert!(matches!(Edges::new(vec![0.1, 0.5]), Edges::Wide(_)));
        assert!(matches!(Edges::new(vec![0.5, 1e300]), Edges::Wide(_)));
        let rounded = f64::from(0.1_f32);
        let edges = Edges::new(vec![rounded]);
        assert!(matches!(edges, Edges::Narrow(_)));
        assert_eq!((edges.bin_of(0.1), edges.bin_of(rounded)), (0, 1));
    }
    use crate::decode::{decode_prediction, Limits};

    #[test]
    fn models_of_the_same_features_share_one_list() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = feature_list(names(&["shared-a", "shared-b"]));
        let b = feature_list(names(&["shared-a", "shared-b"]));
        let other = feature_list(names(&["shared-b", "shared-a"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(*other, names(&["shared-b", "shared-a"]));
        drop((a, b));
        // no model holds the list any more: a new one is made, equal to the old
        let again = feature_list(names(&["shared-a", "shared-b"]));
        assert_eq!(Arc::strong_count(&again), 1);
    }

    fn event(i: i64, x: &str, version: &str) -> Prediction {
        let text = format!(
            r#"{{"event_id":"e{i}","model_id":"m","model_version":"{version}",
            "timestamp":{},"features":{{"x":{x},"c":"a"}},"prediction":1,"score":0.5}}"#,
            1_795_800_000_000 + i
        );
        decode_prediction(text.as_bytes(), &Limits::default()).expect("a valid event")
    }

    fn count_windows(size: u64) -> Windows {
        Windows::Count {
            size,
            index: 0,
            count: 0,
            first: None,
            last: None,
        }
    }

    fn config() -> Config {
        Config {
            warmup_events: 4,
            categorical: vec![],
            detector_names: vec!["adwin".into()],
            detector_delta: 0.002,
            detector_block: 1,
        }
    }

    #[test]
    fn numeric_cells_are_sorted_out_by_kind() {
        let values = [
            Value::Float(1.5),
            Value::Null,
            Value::Str("x".into()),
            Value::Bool(true),
            Value::Int(2),
            Value::BigInt("1".repeat(400)),
        ];
        let mut cells: Vec<Cell<'_>> = values.iter().map(Cell::Value).collect();
        cells.push(Cell::Missing);
        cells.push(Cell::Score(None));
        let column = NumericColumn::of(&cells);
        assert_eq!(column.values, vec![1.5, 1.0, 2.0]);
        assert_eq!(column.positions, vec![0, 3, 4]);
        assert_eq!(column.detectable, vec![true, false, true]);
        assert_eq!(
            (column.missing, column.invalid, column.non_finite),
            (3, 1, 1)
        );
    }

    #[test]
    fn categories_follow_the_reference() {
        let reference = Reference::Categorical(Arc::new(CategoricalRef {
            index: HashMap::from([("a".to_string(), 0), ("1".to_string(), 1)]),
            known: HashSet::from(["a".to_string(), "1".to_string(), "rare".to_string()]),
            counts: vec![5.0, 2.0, 1.0],
        }));
        let mut acc = Acc::new(Kind::Categorical, Some(&reference));
        let values = [
            Value::Str("a".into()),
            Value::Int(1),
            Value::Str("rare".into()),
            Value::Str("new".into()),
            Value::Null,
            Value::Float(2.5),
            Value::Bool(true),
        ];
        let cells: Vec<Cell<'_>> = values.iter().map(Cell::Value).collect();
        acc.add(&cells, None);
        let Acc::Categorical {
            counts,
            bins,
            unseen,
            ..
        } = &acc
        else {
            panic!("categorical")
        };
        // a, 1, other known (rare), never seen (new, 2.5, true)
        assert_eq!(bins.counts(), vec![1, 1, 1, 3]);
        assert_eq!((counts.n, counts.missing, *unseen), (6, 1, 3));
        let drift = acc.drift().expect("drift against the reference");
        assert!(matches!(drift, Drift::Categorical { psi: Some(p), .. } if p > 0.0));
        assert_eq!(
            acc.distribution(),
            Some(Distribution::Categorical {
                categories: vec!["a".into(), "1".into(), OTHER.into(), UNSEEN.into()],
                reference: vec![0.625, 0.25, 0.125, 0.0],
                window: vec![1, 1, 1, 3],
            })
        );
    }

    #[test]
    fn numeric_distribution_is_on_the_coarse_bins() {
        // Four fine bins (three edges) in two coarse bins: [.., 1) [1, 2) | [2, 3) [3, ..).
        let reference = NumericRef::new(
            vec![1.0, 2.0, 3.0],
            &[1.0, 3.0, 2.0, 2.0],
            &[0, 0, 1, 1],
            (0.0, 4.0, 1.0),
        )
        .expect("a consistent reference");
        let reference = Reference::Numeric(Arc::new(reference));
        let mut acc = Acc::new(Kind::Numeric, Some(&reference));
        assert_eq!(
            Acc::new(Kind::Numeric, None).distribution(),
            None,
            "no reference, nothing to compare with"
        );
        let values = [0.5, 1.5, 2.5, 2.6, 3.5, 3.9].map(Value::Float);
        let cells: Vec<Cell<'_>> = values.iter().map(Cell::Value).collect();
        acc.add(&cells, None);
        assert_eq!(
            acc.distribution(),
            Some(Distribution::Numeric {
                edges: vec![2.0],
                reference: vec![0.5, 0.5],
                window: vec![2, 4],
            })
        );
    }

    #[test]
    fn count_windows_pause_at_warmup_and_close_and_split_at_versions() {
        let mut core = ModelCore::new(
            config(),
            count_windows(3),
            vec![("x".into(), Kind::Numeric)],
        );
        core.restart_warmup();
        let events: Vec<Prediction> = (0..8)
            .map(|i| event(i, &format!("{}.5", i), if i < 5 { "v1" } else { "v2" }))
            .collect();
        let refs: Vec<&Prediction> = events.iter().collect();
        core.begin();
        let mut runs = Vec::new();
        // window 0 closes after 3 events
        assert!(matches!(
            core.step(&refs, &mut runs),
            Pause::Close { key: 0, .. }
        ));
        // the warm-up (4 events) ends inside window 1
        assert!(matches!(core.step(&refs, &mut runs), Pause::Warmup(_)));
        assert!(core.warmup.is_none());
        // the version changes at event 5, inside a run; window 1 closes at event 6
        assert!(matches!(
            core.step(&refs, &mut runs),
            Pause::Close { key: 1, .. }
        ));
        assert!(matches!(core.step(&refs, &mut runs), Pause::Done));
        let lengths: Vec<usize> = runs.iter().map(|r| r.len).collect();
        assert_eq!(lengths, vec![3, 1, 2, 2]);
        assert_eq!(
            runs[2].versions,
            vec![(0, Some("v1".to_string())), (1, Some("v2".to_string()))]
        );
        assert!(runs[3].versions.is_empty());
        assert_eq!(core.model_version.as_deref(), Some("v2"));
        assert_eq!(core.events, 8);
        let flushed = core.flush();
        assert_eq!(flushed.len(), 1);
        let (window, _) = core.take_window(flushed[0].0);
        assert_eq!(window.count, 2);
    }

    #[test]
    fn time_windows_hop_and_count_late_events() {
        let mut windows = Windows::Time {
            size: 10,
            step: 5,
            lateness: 0,
            max_time: None,
            open: Vec::new(),
        };
        assert_eq!(windows.time_open(12), vec![5, 10]);
        assert_eq!(windows.closed(), Vec::new());
        assert_eq!(windows.time_open(21), vec![15, 20]);
        let closed: Vec<i64> = windows.closed().iter().map(|(k, _)| *k).collect();
        assert_eq!(closed, vec![5, 10]);
        assert!(
            windows.time_open(3).is_empty(),
            "every window of t=3 has closed"
        );
    }
}
