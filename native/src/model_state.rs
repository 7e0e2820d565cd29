//! The state bytes of a [`ModelCore`]: compact, deterministic (maps written in key order) and
//! checked on reading. References shared by several windows are written once (a table), as are
//! the feature lists windows were opened under.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::adwin::Adwin;
use crate::decode::Value;
use crate::detectors::{Algorithm, Detector, PageHinkley, Signal, SignalKind};
use crate::features::{CategoricalRef, Kind, NumericRef, Reference};
use crate::joint::{Joint, JointBand, JointRef};
use crate::mapped::Mapped;
use crate::model::{Config, ModelCore};
use crate::sketch::LogHistogram;
use crate::state::{exact, Reader, StateError, Writer};
use crate::tally::Tally;
use crate::warmup::{WarmColumn, Warmup};
use crate::window_acc::{Acc, Counts};
use crate::windows::{Window, Windows};

const NONE: u32 = u32::MAX;

fn bad(message: &str) -> StateError {
    StateError::new(message)
}

fn write_kind(out: &mut Writer, kind: Kind) {
    out.u8(match kind {
        Kind::Numeric => 0,
        Kind::Categorical => 1,
    });
}

fn read_kind(input: &mut Reader<'_>) -> Result<Kind, StateError> {
    match input.u8()? {
        0 => Ok(Kind::Numeric),
        1 => Ok(Kind::Categorical),
        _ => Err(bad("bad feature kind")),
    }
}

fn write_value(out: &mut Writer, value: &Value) {
    match value {
        Value::Null => out.u8(0),
        Value::Bool(b) => {
            out.u8(1);
            out.bool(*b);
        }
        Value::Int(i) => {
            out.u8(2);
            out.i64(*i);
        }
        Value::BigInt(digits) => {
            out.u8(3);
            out.str(digits);
        }
        Value::Float(x) => {
            out.u8(4);
            out.f64(*x);
        }
        Value::Str(s) => {
            out.u8(5);
            out.str(s);
        }
    }
}

fn read_value(input: &mut Reader<'_>) -> Result<Value, StateError> {
    Ok(match input.u8()? {
        0 => Value::Null,
        1 => Value::Bool(input.bool()?),
        2 => Value::Int(input.i64()?),
        3 => Value::BigInt(input.str()?),
        4 => Value::Float(input.f64()?),
        5 => Value::Str(input.str()?),
        _ => return Err(bad("bad value tag")),
    })
}

fn write_bins(out: &mut Writer, bins: &Tally) {
    out.u32(bins.len() as u32);
    for v in bins.counts() {
        out.u32(v);
    }
}

fn read_bins(input: &mut Reader<'_>) -> Result<Tally, StateError> {
    let n = input.count(4)?;
    Ok(Tally::from_counts(&exact(n, || input.u32())?))
}

fn write_i64s(out: &mut Writer, values: &[i64]) {
    out.u32(values.len() as u32);
    for &v in values {
        out.i64(v);
    }
}

fn read_i64s(input: &mut Reader<'_>) -> Result<Vec<i64>, StateError> {
    let n = input.count(8)?;
    exact(n, || input.i64())
}

fn write_counts(out: &mut Writer, counts: &Counts) {
    out.u64(counts.n);
    out.u64(counts.missing);
    out.u64(counts.non_finite);
    out.u64(counts.invalid);
}

fn read_counts(input: &mut Reader<'_>) -> Result<Counts, StateError> {
    Ok(Counts {
        n: input.u64()?,
        missing: input.u64()?,
        non_finite: input.u64()?,
        invalid: input.u64()?,
    })
}

/// Every distinct reference and feature list of a core, numbered.
#[derive(Default)]
struct Tables {
    references: Vec<Reference>,
    reference_ids: HashMap<usize, u32>,
    names: Vec<Arc<Vec<String>>>,
    name_ids: HashMap<usize, u32>,
}

fn reference_ptr(reference: &Reference) -> usize {
    match reference {
        Reference::Numeric(r) => Arc::as_ptr(r) as usize,
        Reference::Categorical(r) => Arc::as_ptr(r) as usize,
    }
}

impl Tables {
    fn reference(&mut self, reference: &Reference) -> u32 {
        let ptr = reference_ptr(reference);
        if let Some(&id) = self.reference_ids.get(&ptr) {
            return id;
        }
        let id = self.references.len() as u32;
        self.references.push(reference.clone());
        self.reference_ids.insert(ptr, id);
        id
    }

    fn names(&mut self, names: &Arc<Vec<String>>) -> u32 {
        let ptr = Arc::as_ptr(names) as usize;
        if let Some(&id) = self.name_ids.get(&ptr) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(Arc::clone(names));
        self.name_ids.insert(ptr, id);
        id
    }

    fn acc_reference(&mut self, acc: &Acc) -> u32 {
        match acc {
            Acc::Numeric {
                reference: Some(r), ..
            } => self.reference(&Reference::Numeric(Arc::clone(r))),
            Acc::Categorical {
                reference: Some(r), ..
            } => self.reference(&Reference::Categorical(Arc::clone(r))),
            _ => NONE,
        }
    }
}

fn write_reference(out: &mut Writer, reference: &Reference) {
    match reference {
        Reference::Numeric(r) => {
            out.u8(0);
            out.f64s(&r.edges.to_vec());
            out.f64s(&r.counts.f64s());
            let coarse_of = r.coarse_of.to_vec();
            out.u32(coarse_of.len() as u32);
            for &c in &coarse_of {
                out.u32(u32::from(c));
            }
            out.f64s(&r.coarse_counts());
            out.f64(r.minimum);
            out.f64(r.maximum);
            out.f64(r.std);
        }
        Reference::Categorical(r) => {
            out.u8(1);
            let mut index: Vec<(&String, &usize)> = r.index.iter().collect();
            index.sort();
            out.u32(index.len() as u32);
            for (name, &i) in index {
                out.str(name);
                out.u32(i as u32);
            }
            let mut known: Vec<&String> = r.known.iter().collect();
            known.sort();
            out.u32(known.len() as u32);
            for name in known {
                out.str(name);
            }
            out.f64s(&r.counts);
        }
    }
}

fn read_reference(input: &mut Reader<'_>) -> Result<Reference, StateError> {
    Ok(match input.u8()? {
        0 => {
            let edges = input.f64s()?;
            let counts = input.f64s()?;
            let n = input.count(4)?;
            let coarse_of = exact(n, || input.u32())?;
            let coarse_counts = input.f64s()?;
            let range = (input.f64()?, input.f64()?, input.f64()?);
            let reference = NumericRef::new(edges, &counts, &coarse_of, range).map_err(bad)?;
            // The coarse counts are written for readers of the format; they must be the sums.
            if reference.coarse_counts() != coarse_counts {
                return Err(bad("numeric reference does not hold together"));
            }
            Reference::Numeric(Arc::new(reference))
        }
        1 => {
            let n = input.count(8)?;
            let mut index = HashMap::with_capacity(n);
            for _ in 0..n {
                let name = input.str()?;
                index.insert(name, input.u32()? as usize);
            }
            let n = input.count(4)?;
            let mut known = HashSet::with_capacity(n);
            for _ in 0..n {
                known.insert(input.str()?);
            }
            let counts = input.f64s()?;
            if index.values().any(|&i| i >= counts.len()) {
                return Err(bad("categorical reference does not hold together"));
            }
            Reference::Categorical(Arc::new(CategoricalRef {
                index,
                known,
                counts,
            }))
        }
        _ => return Err(bad("bad reference tag")),
    })
}

fn write_acc(out: &mut Writer, acc: &Acc, tables: &mut Tables) {
    let reference = tables.acc_reference(acc);
    match acc {
        Acc::Numeric {
            counts,
            bins,
            out_of_range,
            ..
        } => {
            out.u8(0);
            write_counts(out, counts);
            write_bins(out, bins);
            out.u64(*out_of_range);
        }
        Acc::Categorical {
            counts,
            bins,
            unseen,
            ..
        } => {
            out.u8(1);
            write_counts(out, counts);
            write_bins(out, bins);
            out.u64(*unseen);
        }
    }
    out.u32(reference);
}

fn read_acc(input: &mut Reader<'_>, references: &[Reference]) -> Result<Acc, StateError> {
    let tag = input.u8()?;
    let counts = read_counts(input)?;
    let bins = read_bins(input)?;
    let extra = input.u64()?;
    let reference = match input.u32()? {
        NONE => None,
        id => Some(
            references
                .get(id as usize)
                .ok_or_else(|| bad("no such reference"))?,
        ),
    };
    let acc = match (tag, reference) {
        (0, None) => Acc::Numeric {
            counts,
            bins,
            out_of_range: extra,
            reference: None,
        },
        (0, Some(Reference::Numeric(r))) if bins.len() == r.counts.len() => Acc::Numeric {
            counts,
            bins,
            out_of_range: extra,
            reference: Some(Arc::clone(r)),
        },
        (1, None) => Acc::Categorical {
            counts,
            bins,
            unseen: extra,
            reference: None,
        },
        (1, Some(Reference::Categorical(r))) if bins.len() == r.counts.len() + 1 => {
            Acc::Categorical {
                counts,
                bins,
                unseen: extra,
                reference: Some(Arc::clone(r)),
            }
        }
        _ => return Err(bad("accumulator does not match its reference")),
    };
    Ok(acc)
}

fn write_windows(out: &mut Writer, windows: &Windows) {
    match windows {
        Windows::Count {
            size,
            index,
            count,
            first,
            last,
        } => {
            out.u8(0);
            out.u64(*size);
            out.i64(*index);
            out.u64(*count);
            out.option_i64(*first);
            out.option_i64(*last);
        }
        Windows::Time {
            size,
            step,
            lateness,
            max_time,
            open,
        } => {
            out.u8(1);
            out.i64(*size);
            out.i64(*step);
            out.i64(*lateness);
            out.option_i64(*max_time);
            write_i64s(out, open);
        }
    }
}

fn read_windows(input: &mut Reader<'_>) -> Result<Windows, StateError> {
    Ok(match input.u8()? {
        0 => Windows::Count {
            size: input.u64()?.max(1),
            index: input.i64()?,
            count: input.u64()?,
            first: input.option_i64()?,
            last: input.option_i64()?,
        },
        1 => {
            let (size, step, lateness) = (input.i64()?, input.i64()?, input.i64()?);
            if size <= 0 || step <= 0 {
                return Err(bad("window size and step must be positive"));
            }
            Windows::Time {
                size,
                step,
                lateness,
                max_time: input.option_i64()?,
                open: read_i64s(input)?,
            }
        }
        _ => return Err(bad("bad window kind")),
    })
}

fn write_warmup(out: &mut Writer, warmup: &Warmup) {
    out.u64(warmup.size);
    out.u64(warmup.count);
    out.u32(warmup.columns.len() as u32);
    for (name, column) in &warmup.columns {
        out.str(name);
        match column {
            WarmColumn::Numbers(numbers) => {
                out.u8(0);
                out.f64s(numbers);
            }
            WarmColumn::Values(values) => {
                out.u8(1);
                out.u32(values.len() as u32);
                for v in values.iter() {
                    write_value(out, v);
                }
            }
        }
    }
    out.f64s(&warmup.scores);
    out.u32(warmup.predictions.len() as u32);
    for p in warmup.predictions.iter() {
        write_value(out, p);
    }
}

/// A restored warm-up column, with room for the whole warm-up (it goes on growing to `size`).
fn warm<T>(values: Vec<T>, size: u64) -> Mapped<T> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let mut column = Mapped::with_capacity(values.len().max(size.min(MAX_WARMUP_ROOM)));
    for value in values {
        column.push(value);
    }
    column
}

/// Room reserved for a restored warm-up column at most (a corrupt size must not reserve more).
const MAX_WARMUP_ROOM: usize = 1 << 20;

fn read_warmup(input: &mut Reader<'_>) -> Result<Warmup, StateError> {
    let size = input.u64()?;
    let count = input.u64()?;
    let n = input.count(5)?;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let name = input.str()?;
        let column = match input.u8()? {
            0 => WarmColumn::Numbers(warm(input.f64s()?, size)),
            1 => {
                let n = input.count(1)?;
                WarmColumn::Values(warm(exact(n, || read_value(input))?, size))
            }
            _ => return Err(bad("bad warm-up column")),
        };
        columns.push((name, column));
    }
    let scores = warm(input.f64s()?, size);
    let n = input.count(1)?;
    let predictions = warm(exact(n, || read_value(input))?, size);
    Ok(Warmup {
        size,
        count,
        columns,
        scores,
        predictions,
    })
}

fn write_detector(out: &mut Writer, detector: &Detector) {
    match &detector.algorithm {
        Algorithm::Adwin(adwin) => {
            out.u8(0);
            adwin.write(out);
        }
        Algorithm::PageHinkley(ph) => {
            out.u8(1);
            out.f64(ph.n);
            out.f64(ph.mean);
            out.f64(ph.sum_increase);
            out.f64(ph.sum_decrease);
            out.f64(ph.min_increase);
            out.f64(ph.max_decrease);
            out.bool(ph.drift_detected);
        }
    }
    out.f64(detector.mean);
    out.f64(detector.scale);
    out.u32(detector.block);
    out.f64(detector.total);
    out.u32(detector.filled);
    out.u64(detector.detections);
}

fn read_detector(input: &mut Reader<'_>) -> Result<Detector, StateError> {
    let algorithm = match input.u8()? {
        0 => Algorithm::Adwin(Adwin::read(input)?),
        1 => Algorithm::PageHinkley(PageHinkley {
            n: input.f64()?,
            mean: input.f64()?,
            sum_increase: input.f64()?,
            sum_decrease: input.f64()?,
            min_increase: input.f64()?,
            max_decrease: input.f64()?,
            drift_detected: input.bool()?,
        }),
        _ => return Err(bad("bad detector")),
    };
    Ok(Detector {
        algorithm,
        mean: input.f64()?,
        scale: input.f64()?,
        block: input.u32()?.max(1),
        total: input.f64()?,
        filled: input.u32()?,
        detections: input.u64()?,
    })
}

/// Write a core between batches (no pending closes, no batch in progress).
pub fn write_core(core: &ModelCore, out: &mut Writer) {
    let mut tables = Tables::default();
    // Reference ids are given in a fixed order: the core's own, then each window's.
    let own: Vec<u32> = core
        .references
        .iter()
        .map(|r| r.as_ref().map_or(NONE, |r| tables.reference(r)))
        .collect();
    let prediction = core
        .prediction_ref
        .as_ref()
        .map(|(kind, r)| (*kind, tables.reference(r)));
    let current_names = tables.names(&core.names);
    let mut body = Writer::default();
    body.u32(core.open.len() as u32);
    for (key, window) in &core.open {
        body.i64(*key);
        body.u32(tables.names(&window.names));
        body.u64(window.count);
        body.option_i64(window.first);
        body.option_i64(window.last);
        body.u32(window.features.len() as u32);
        for acc in &window.features {
            write_acc(&mut body, acc, &mut tables);
        }
        body.bool(window.prediction.is_some());
        if let Some(acc) = &window.prediction {
            write_acc(&mut body, acc, &mut tables);
        }
        window.latency.write(&mut body);
        window.lag.write(&mut body);
        body.bool(window.joint.is_some());
        if let Some(joint) = &window.joint {
            write_joint(&mut body, joint);
        }
    }
    // config
    let config = &core.config;
    out.u64(config.warmup_events);
    out.u32(config.categorical.len() as u32);
    for name in &config.categorical {
        out.str(name);
    }
    out.u32(config.detector_names.len() as u32);
    for name in &config.detector_names {
        out.str(name);
    }
    out.f64(config.detector_delta);
    out.u32(config.detector_block);
    // tables
    out.u32(tables.references.len() as u32);
    for reference in &tables.references {
        write_reference(out, reference);
    }
    out.u32(tables.names.len() as u32);
    for names in &tables.names {
        out.u32(names.len() as u32);
        for name in names.iter() {
            out.str(name);
        }
    }
    // the core
    write_windows(out, &core.windows);
    out.u32(current_names);
    out.u32(core.kinds.len() as u32);
    for kind in &core.kinds {
        write_kind(out, *kind);
    }
    for id in own {
        out.u32(id);
    }
    out.bool(prediction.is_some());
    if let Some((kind, id)) = prediction {
        write_kind(out, kind);
        out.u32(id);
    }
    out.u8(match core.signal {
        None => 0,
        Some(SignalKind::Score) => 1,
        Some(SignalKind::Prediction) => 2,
    });
    out.u32(core.signals.len() as u32);
    for signal in &core.signals {
        out.u32(signal.slot.map_or(NONE, |s| s as u32));
        out.u32(signal.detectors.len() as u32);
        for detector in &signal.detectors {
            write_detector(out, detector);
        }
    }
    out.bool(core.warmup.is_some());
    if let Some(warmup) = &core.warmup {
        write_warmup(out, warmup);
    }
    out.u64(core.late);
    out.option_i64(core.max_time);
    out.u64(core.events);
    out.bool(core.model_version.is_some());
    out.str(core.model_version.as_deref().unwrap_or(""));
    out.bool(core.joint_ref.is_some());
    if let Some(joint) = &core.joint_ref {
        out.u32(joint.slots.len() as u32);
        for ((&slot, &mean), &inv_sd) in joint.slots.iter().zip(&joint.mean).zip(&joint.inv_sd) {
            out.u32(slot);
            out.f64(mean);
            out.f64(inv_sd);
        }
        let band = &joint.band;
        out.u32(band.kept);
        out.f64s(&band.discarded);
        out.f64(band.error_mean);
        out.f64(band.error_sd);
        out.u64(band.held_out);
        out.u32(band.correlations.len() as u32);
        for &r in &band.correlations {
            out.u32(r.to_bits());
        }
        out.u64(band.sample_size);
        for &v in &band.pair_spread {
            out.u32(v.to_bits());
        }
        out.f64s(&band.error_edges);
        out.f64s(&band.error_counts);
    }
    out.u32(core.joint_detectors.len() as u32);
    for detector in &core.joint_detectors {
        write_detector(out, detector);
    }
    out.bool(core.joint_half.is_some());
    if let Some(half) = &core.joint_half {
        out.f64s(half);
    }
    out.raw(&body.finish());
}

fn write_joint(out: &mut Writer, joint: &Joint) {
    out.u64(joint.n);
    out.u32(joint.sums.len() as u32);
    out.u32((joint.sums.len() + joint.cross.len()) as u32);
    for &sum in joint.sums.iter().chain(&joint.cross) {
        out.i64(sum);
    }
}

fn read_joint(input: &mut Reader<'_>) -> Result<Joint, StateError> {
    let n = input.u64()?;
    let features = input.u32()? as usize;
    let values = input.count(8)?; // bounds what is allocated by the bytes there are
    if features.checked_mul(features + 3).map(|v| v / 2) != Some(values) {
        return Err(bad("joint moments of the wrong size"));
    }
    let mut joint = Joint::new(features);
    for sum in joint.sums.iter_mut().chain(joint.cross.iter_mut()) {
        *sum = input.i64()?;
    }
    joint.n = n;
    Ok(joint)
}

/// Read a core written by [`write_core`].
pub fn read_core(input: &mut Reader<'_>) -> Result<ModelCore, StateError> {
    let warmup_events = input.u64()?;
    let n = input.count(4)?;
    let categorical = exact(n, || input.str())?;
    let n = input.count(4)?;
    let detector_names = exact(n, || input.str())?;
    let config = Config {
        warmup_events,
        categorical,
        detector_names,
        detector_delta: input.f64()?,
        detector_block: input.u32()?,
    };
    let n = input.count(1)?;
    let references = exact(n, || read_reference(input))?;
    let n = input.count(4)?;
    let mut name_lists = Vec::with_capacity(n);
    for _ in 0..n {
        let m = input.count(4)?;
        name_lists.push(crate::model::feature_list(exact(m, || input.str())?));
    }
    let lookup_names = |id: u32| -> Result<Arc<Vec<String>>, StateError> {
        name_lists
            .get(id as usize)
            .cloned()
            .ok_or_else(|| bad("no such feature list"))
    };
    let lookup_reference = |id: u32| -> Result<Option<Reference>, StateError> {
        match id {
            NONE => Ok(None),
            id => references
                .get(id as usize)
                .cloned()
                .map(Some)
                .ok_or_else(|| bad("no such reference")),
        }
    };
    let state_windows = read_windows(input)?;
    let names = lookup_names(input.u32()?)?;
    let n = input.count(1)?;
    if n != names.len() {
        return Err(bad("feature kinds do not match the features"));
    }
    let kinds = exact(n, || read_kind(input))?;
    let types: Vec<(String, Kind)> = names.iter().cloned().zip(kinds).collect();
    let own = exact(types.len(), || lookup_reference(input.u32()?))?;
    let prediction_ref = if input.bool()? {
        let kind = read_kind(input)?;
        let reference = lookup_reference(input.u32()?)?.ok_or_else(|| bad("missing reference"))?;
        Some((kind, reference))
    } else {
        None
    };
    let signal = match input.u8()? {
        0 => None,
        1 => Some(SignalKind::Score),
        2 => Some(SignalKind::Prediction),
        _ => return Err(bad("bad signal")),
    };
    let n = input.count(8)?;
    let mut signals = Vec::with_capacity(n);
    for _ in 0..n {
        let slot = match input.u32()? {
            NONE => None,
            s if (s as usize) < types.len() => Some(s as usize),
            _ => return Err(bad("signal beyond the features")),
        };
        let m = input.count(8)?;
        let detectors = exact(m, || read_detector(input))?;
        signals.push(Signal {
            slot,
            detectors: detectors.into_boxed_slice(),
        });
    }
    let warmup = if input.bool()? {
        Some(read_warmup(input)?)
    } else {
        None
    };
    let late = input.u64()?;
    let max_time = input.option_i64()?;
    let events = input.u64()?;
    let has_version = input.bool()?;
    let version = input.str()?;
    let joint_ref = if input.bool()? {
        let n = input.count(20)?;
        let mut slots = Vec::with_capacity(n);
        let mut mean = Vec::with_capacity(n);
        let mut inv_sd = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = input.u32()?;
            if slot as usize >= types.len() {
                return Err(bad("a joint feature beyond the features"));
            }
            slots.push(slot);
            mean.push(input.f64()?);
            inv_sd.push(input.f64()?);
        }
        let kept = input.u32()?;
        let discarded = input.f64s()?;
        let error_mean = input.f64()?;
        let error_sd = input.f64()?;
        let held_out = input.u64()?;
        let m = input.count(4)?;
        let correlations = exact(m, || input.u32().map(f32::from_bits))?;
        let sample_size = input.u64()?;
        let pair_spread = exact(m, || input.u32().map(f32::from_bits))?;
        let band = JointBand {
            kept,
            discarded,
            error_mean,
            error_sd,
            held_out,
            correlations,
            sample_size,
            pair_spread,
            error_edges: input.f64s()?,
            error_counts: input.f64s()?,
        };
        Some(JointRef::new(slots, mean, inv_sd, band).ok_or_else(|| bad("bad joint reference"))?)
    } else {
        None
    };
    let n = input.count(8)?;
    let joint_detectors = exact(n, || read_detector(input))?.into_boxed_slice();
    let joint_half = if input.bool()? {
        let half = input.f64s()?;
        if joint_ref.as_ref().is_none_or(|r| r.len() != half.len()) {
            return Err(bad("a joint pair's first event of the wrong size"));
        }
        Some(half)
    } else {
        None
    };
    let n = input.count(8)?;
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let key = input.i64()?;
        let window_names = lookup_names(input.u32()?)?;
        let count = input.u64()?;
        let first = input.option_i64()?;
        let last = input.option_i64()?;
        let m = input.count(8)?;
        if m != window_names.len() {
            return Err(bad("window accumulators do not match its features"));
        }
        let features = exact(m, || read_acc(input, &references))?;
        let prediction = if input.bool()? {
            Some(read_acc(input, &references)?)
        } else {
            None
        };
        let latency = LogHistogram::read(input)?;
        let lag = LogHistogram::read(input)?;
        let joint = if input.bool()? {
            Some(read_joint(input)?)
        } else {
            None
        };
        open.push((
            key,
            Window {
                names: window_names,
                count,
                first,
                last,
                features,
                prediction,
                latency,
                lag,
                joint,
            },
        ));
    }
    let mut core = ModelCore::new(config, state_windows, types);
    core.names = names;
    core.references = own;
    core.prediction_ref = prediction_ref;
    core.joint_ref = joint_ref;
    core.joint_detectors = joint_detectors;
    core.joint_half = joint_half;
    core.signal = signal;
    core.signals = signals;
    core.warmup = warmup;
    core.open = open;
    core.late = late;
    core.max_time = max_time;
    core.events = events;
    core.model_version = has_version.then_some(version);
    core.pending = VecDeque::new();
    Ok(core)
}
