//! Python bindings of the batch core: `Batch` (decoded records of one partition batch) and
//! `ModelCore` (one model's per-event state).
//!
//! `decode_batch` parses every record with the GIL released; `ModelCore.feed` and `resume`
//! count a model's events, also with the GIL released, and come back to Python only where
//! Python must decide: a window closed, or the warm-up is complete.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::decode::Prediction;
use crate::detectors::{Detector, SignalKind};
use crate::features::{CategoricalRef, Kind, NumericRef, Reference};
use crate::joint::{JointBand, JointRef};
use crate::model::{Config, ModelCore, Pause, RunRecord};
use crate::model_state::{read_core, write_core};
use crate::python_batch::{detach_if, internal_error, value_py, PyBatch, DETACH_FROM};
use crate::sketch::LogHistogram;
use crate::state::{Reader, Writer};
use crate::warmup::{WarmColumn, Warmup};
use crate::window_acc::{Acc, Distribution, Drift};
use crate::windows::{Bounds, Window, Windows};

/// Version of a model core's state bytes; other versions are refused (the partition restarts
/// fresh).
const CORE_STATE_VERSION: u8 = 4;

fn kind_of(text: &str) -> PyResult<Kind> {
    match text {
        "numeric" => Ok(Kind::Numeric),
        "categorical" => Ok(Kind::Categorical),
        other => Err(PyValueError::new_err(format!(
            "feature kind {other:?} is neither numeric nor categorical"
        ))),
    }
}

/// A reference from its Python description: ("numeric", edges, counts, coarse_of, minimum,
/// maximum, std) or ("categorical", index, known, counts).
fn reference_of(description: &Bound<'_, PyTuple>) -> PyResult<Reference> {
    let kind: String = description.get_item(0)?.extract()?;
    match kind.as_str() {
        "numeric" => {
            let edges: Vec<f64> = description.get_item(1)?.extract()?;
            let counts: Vec<f64> = description.get_item(2)?.extract()?;
            let coarse_of: Vec<u32> = description.get_item(3)?.extract()?;
            let range = (
                description.get_item(4)?.extract()?,
                description.get_item(5)?.extract()?,
                description.get_item(6)?.extract()?,
            );
            let reference = NumericRef::new(edges, &counts, &coarse_of, range)
                .map_err(PyValueError::new_err)?;
            Ok(Reference::Numeric(Arc::new(reference)))
        }
        "categorical" => {
            let index: HashMap<String, usize> = description.get_item(1)?.extract()?;
            let known: HashSet<String> = description.get_item(2)?.extract()?;
            let counts: Vec<f64> = description.get_item(3)?.extract()?;
            if index.values().any(|&i| i >= counts.len()) {
                return Err(PyValueError::new_err(
                    "categorical reference: an index beyond the counts",
                ));
            }
            Ok(Reference::Categorical(Arc::new(CategoricalRef {
                index,
                known,
                counts,
            })))
        }
        other => Err(PyValueError::new_err(format!(
            "unknown reference kind {other:?}"
        ))),
    }
}

fn optional_f64(py: Python<'_>, value: Option<f64>) -> Py<PyAny> {
    match value {
        Some(v) => v
            .into_pyobject(py)
            .map(|v| v.into_any().unbind())
            .unwrap_or_else(|_| py.None()),
        None => py.None(),
    }
}

fn drift_py<'py>(py: Python<'py>, drift: &Drift) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    match drift {
        Drift::Numeric(d) => {
            out.set_item("psi", optional_f64(py, d.psi))?;
            out.set_item("jensen_shannon", optional_f64(py, d.jensen_shannon))?;
            out.set_item("chi_square", optional_f64(py, d.chi_square))?;
            out.set_item("chi_square_pvalue", optional_f64(py, d.chi_square_pvalue))?;
            out.set_item("ks", optional_f64(py, d.ks))?;
            out.set_item("ks_pvalue", optional_f64(py, d.ks_pvalue))?;
            out.set_item("wasserstein", optional_f64(py, d.wasserstein))?;
        }
        Drift::Categorical {
            psi,
            jensen_shannon,
            chi_square,
            chi_square_pvalue,
            unseen_share,
        } => {
            out.set_item("psi", optional_f64(py, *psi))?;
            out.set_item("jensen_shannon", optional_f64(py, *jensen_shannon))?;
            out.set_item("chi_square", optional_f64(py, *chi_square))?;
            out.set_item("chi_square_pvalue", optional_f64(py, *chi_square_pvalue))?;
            out.set_item("unseen_share", optional_f64(py, *unseen_share))?;
        }
    }
    Ok(out)
}

fn accumulator_py<'py>(py: Python<'py>, acc: &Acc, events: u64) -> PyResult<Bound<'py, PyTuple>> {
    let drift = match acc.drift() {
        Some(d) => drift_py(py, &d)?,
        None => PyDict::new(py),
    };
    let quality = PyDict::new(py);
    if let Some(q) = acc.quality(events) {
        quality.set_item("missing_rate", q.missing_rate)?;
        quality.set_item("non_finite_rate", q.non_finite_rate)?;
        quality.set_item("type_mismatch_rate", q.type_mismatch_rate)?;
        let name = if q.numeric {
            "out_of_range_rate"
        } else {
            "unseen_rate"
        };
        quality.set_item(name, optional_f64(py, q.extra))?;
    }
    PyTuple::new(
        py,
        [
            drift.into_any(),
            quality.into_any(),
            acc.counts().n.into_pyobject(py)?.into_any(),
            distribution_py(py, acc)?,
        ],
    )
}

/// The window's distribution beside the reference's: {"edges" or "categories", "reference"
/// (shares), "window" (counts)}, or None without a reference.
fn distribution_py<'py>(py: Python<'py>, acc: &Acc) -> PyResult<Bound<'py, PyAny>> {
    let out = PyDict::new(py);
    match acc.distribution() {
        None => return Ok(py.None().into_bound(py)),
        Some(Distribution::Numeric {
            edges,
            reference,
            window,
        }) => {
            out.set_item("edges", edges)?;
            out.set_item("reference", reference)?;
            out.set_item("window", window)?;
        }
        Some(Distribution::Categorical {
            categories,
            reference,
            window,
        }) => {
            out.set_item("categories", categories)?;
            out.set_item("reference", reference)?;
            out.set_item("window", window)?;
        }
    }
    Ok(out.into_any())
}

fn percentiles_py<'py>(py: Python<'py>, sketch: &LogHistogram) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    if sketch.count > 0 {
        out.set_item("p50", sketch.quantile(0.5))?;
        out.set_item("p95", sketch.quantile(0.95))?;
        out.set_item("p99", sketch.quantile(0.99))?;
        out.set_item("max", sketch.maximum)?;
    }
    Ok(out)
}

/// A closed window for Python: (key, (index, start, end), late, count, features, prediction,
/// latency percentiles, lag percentiles); features are (drift, quality, n) per monitored
/// feature, in order; prediction is (drift, quality, n) or None.
fn close_py<'py>(
    py: Python<'py>,
    key: i64,
    bounds: Bounds,
    window: &Window,
    late: u64,
    joint_ref: Option<&JointRef>,
) -> PyResult<Bound<'py, PyTuple>> {
    let features = PyList::empty(py);
    for (name, acc) in window.names.iter().zip(&window.features) {
        let (drift, quality, n, distribution) = accumulator_py(py, acc, window.count)?.extract::<(
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
        )>(
        )?;
        features.append((name, drift, quality, n, distribution))?;
    }
    let prediction = match &window.prediction {
        Some(acc) => accumulator_py(py, acc, window.count)?.into_any(),
        None => py.None().into_bound(py),
    };
    PyTuple::new(
        py,
        [
            key.into_pyobject(py)?.into_any(),
            (bounds.index, bounds.start, bounds.end)
                .into_pyobject(py)?
                .into_any(),
            late.into_pyobject(py)?.into_any(),
            window.count.into_pyobject(py)?.into_any(),
            features.into_any(),
            prediction,
            percentiles_py(py, &window.latency)?.into_any(),
            percentiles_py(py, &window.lag)?.into_any(),
            match (&window.joint, joint_ref) {
                (Some(joint), Some(reference)) => match reference.test(joint) {
                    Some(test) => (
                        joint.n,
                        test.value,
                        test.p_value,
                        test.error,
                        test.error_z,
                        test.pairs,
                    )
                        .into_pyobject(py)?
                        .into_any(),
                    None => py.None().into_bound(py),
                },
                _ => py.None().into_bound(py),
            },
        ],
    )
}

fn warmup_py<'py>(py: Python<'py>, warmup: &Warmup) -> PyResult<Bound<'py, PyTuple>> {
    let array = py.import("array")?.getattr("array")?;
    let as_array = |values: &[f64]| -> PyResult<Bound<'py, PyAny>> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        array.call1(("d", PyBytes::new(py, &bytes)))
    };
    let columns = PyDict::new(py);
    for (name, column) in &warmup.columns {
        let value = match column {
            WarmColumn::Numbers(numbers) => as_array(numbers)?,
            WarmColumn::Values(values) => {
                let list = PyList::empty(py);
                for v in values {
                    list.append(value_py(py, v)?)?;
                }
                list.into_any()
            }
        };
        // Interned: models that share feature names share these keys of their references.
        columns.set_item(PyString::intern(py, name), value)?;
    }
    let predictions = PyList::empty(py);
    for p in &warmup.predictions {
        predictions.append(value_py(py, p)?)?;
    }
    PyTuple::new(
        py,
        [
            columns.into_any(),
            as_array(&warmup.scores)?,
            predictions.into_any(),
        ],
    )
}

fn runs_py<'py>(
    py: Python<'py>,
    runs: &[RunRecord],
    positions: &[usize],
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for run in runs {
        let hits = PyList::empty(py);
        for hit in &run.hits {
            hits.append((hit.position, hit.order, hit.detector, hit.detections))?;
        }
        let chosen: Vec<usize> = positions[run.start..run.start + run.len].to_vec();
        out.append((
            chosen,
            PyTuple::new(py, &run.keys)?,
            run.before.clone(),
            hits,
            run.last_open,
            run.versions.clone(),
        ))?;
    }
    Ok(out)
}

/// One model's per-event state in the native core.
#[pyclass(module = "stream_monitor._native", name = "ModelCore")]
pub struct PyModelCore {
    core: ModelCore,
    batch: Option<Py<PyBatch>>,
    positions: Vec<usize>,
}

impl PyModelCore {
    fn run_step<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let batch = self
            .batch
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("resume() without feed()"))?
            .bind(py)
            .borrow();
        let events: Vec<&Prediction> = self
            .positions
            .iter()
            .filter_map(|&i| batch.events.get(i).and_then(Option::as_ref))
            .collect();
        if events.len() != self.positions.len() {
            return Err(PyValueError::new_err(
                "a fed position holds no decoded event",
            ));
        }
        let core = &mut self.core;
        let mut runs = Vec::new();
        // A panic is a bug of the core: it becomes an exception the batch handling sees, never
        // an abort of the interpreter (nor PyO3's PanicException, which escapes `except
        // Exception`).
        let heavy = events.len() - core.cursor.min(events.len()) >= DETACH_FROM;
        let pause = detach_if(py, heavy, || {
            catch_unwind(AssertUnwindSafe(|| core.step(&events, &mut runs)))
        })
        .map_err(|panic| internal_error("counting a batch", &panic))?;
        let runs = runs_py(py, &runs, &self.positions)?;
        let pause = match pause {
            Pause::Done => ("done", py.None().into_bound(py)),
            Pause::Close {
                key,
                bounds,
                window,
                late,
            } => (
                "close",
                close_py(py, key, bounds, &window, late, core.joint_ref.as_ref())?.into_any(),
            ),
            Pause::Warmup(warmup) => ("warmup", warmup_py(py, &warmup)?.into_any()),
        };
        drop(batch);
        if pause.0 == "done" {
            self.batch = None;
            self.positions = Vec::new();
        }
        PyTuple::new(
            py,
            [
                runs.into_any(),
                pause.0.into_pyobject(py)?.into_any(),
                pause.1,
            ],
        )
    }
}

#[pymethods]
impl PyModelCore {
    /// `window`: ("count", events) or ("time", size_ms, step_ms, lateness_ms).
    #[new]
    #[pyo3(signature = (window, warmup_events, categorical, detectors, delta, block, types))]
    fn new(
        window: &Bound<'_, PyTuple>,
        warmup_events: u64,
        categorical: Vec<String>,
        detectors: Vec<String>,
        delta: f64,
        block: u32,
        types: Vec<(String, String)>,
    ) -> PyResult<Self> {
        let windows = windows_of(window)?;
        let types = types
            .into_iter()
            .map(|(name, kind)| Ok((name, kind_of(&kind)?)))
            .collect::<PyResult<Vec<_>>>()?;
        if let Some(name) = detectors
            .iter()
            .find(|n| !matches!(n.as_str(), "adwin" | "page_hinkley"))
        {
            return Err(PyValueError::new_err(format!(
                "detector {name:?} does not run in the native core (adwin, page_hinkley)"
            )));
        }
        let config = Config {
            warmup_events: warmup_events.max(1),
            categorical,
            detector_names: detectors,
            detector_delta: delta,
            detector_block: block,
        };
        Ok(Self {
            core: ModelCore::new(config, windows, types),
            batch: None,
            positions: Vec::new(),
        })
    }

    /// Use a reference: see `ModelCore::set_reference`. `references` holds one description (or
    /// None) per feature of `types`; `detectors` the slot (None: the prediction) of each signal.
    #[allow(clippy::type_complexity)]
    fn set_reference(
        &mut self,
        types: Vec<(String, String)>,
        references: Vec<Option<Bound<'_, PyTuple>>>,
        signal: &str,
        prediction: Option<(String, Bound<'_, PyTuple>)>,
        detectors: Vec<Option<usize>>,
    ) -> PyResult<()> {
        if references.len() != types.len() {
            return Err(PyValueError::new_err("one reference (or None) per feature"));
        }
        let types = types
            .into_iter()
            .map(|(name, kind)| Ok((name, kind_of(&kind)?)))
            .collect::<PyResult<Vec<_>>>()?;
        if detectors
            .iter()
            .any(|slot| slot.is_some_and(|s| s >= types.len()))
        {
            return Err(PyValueError::new_err("a detector slot beyond the features"));
        }
        let references = references
            .iter()
            .zip(&types)
            .map(|(r, (name, _))| {
                r.as_ref()
                    .map(|r| {
                        reference_of(r).map_err(|e| {
                            PyValueError::new_err(format!(
                                "feature {name:?}: {}; rebuild the profile",
                                e.value(r.py())
                            ))
                        })
                    })
                    .transpose()
            })
            .collect::<PyResult<Vec<_>>>()?;
        let signal = match signal {
            "score" => SignalKind::Score,
            "prediction" => SignalKind::Prediction,
            other => {
                return Err(PyValueError::new_err(format!(
                    "prediction signal {other:?} is neither score nor prediction"
                )))
            }
        };
        let prediction = prediction
            .map(|(kind, r)| Ok::<_, PyErr>((kind_of(&kind)?, reference_of(&r)?)))
            .transpose()?;
        self.core
            .set_reference(types, references, signal, prediction, detectors);
        Ok(())
    }

    /// Count joint moments (multivariate drift) in the windows opened from now on: the feature
    /// slots (indices into the reference's features), their means and standard deviations;
    /// None stops it.
    #[allow(clippy::type_complexity)]
    fn set_joint(
        &mut self,
        joint: Option<(
            Vec<u32>,
            Vec<f64>,
            Vec<f64>,
            (
                u32,
                Vec<f64>,
                f64,
                f64,
                u64,
                Vec<f64>,
                u64,
                Vec<f64>,
                Vec<f64>,
                Vec<f64>,
            ),
        )>,
    ) -> PyResult<()> {
        let reference = match joint {
            None => None,
            Some((slots, mean, sd, band)) => {
                if slots.iter().any(|&s| s as usize >= self.core.names.len()) {
                    return Err(PyValueError::new_err(
                        "a joint feature slot beyond the features",
                    ));
                }
                let (
                    kept,
                    discarded,
                    error_mean,
                    error_sd,
                    held_out,
                    correlations,
                    sample_size,
                    pair_spread,
                    error_edges,
                    error_counts,
                ) = band;
                let band = JointBand {
                    kept,
                    discarded,
                    error_mean,
                    error_sd,
                    held_out,
                    correlations: correlations.iter().map(|&r| r as f32).collect(),
                    sample_size,
                    pair_spread: pair_spread.iter().map(|&v| v as f32).collect(),
                    error_edges,
                    error_counts,
                };
                let inv_sd = sd.iter().map(|s| 1.0 / s).collect();
                Some(JointRef::new(slots, mean, inv_sd, band).ok_or_else(|| {
                    PyValueError::new_err(
                        "joint reference: 3 or more features, one finite mean and positive sd \
                         each, components kept and discarded that fit them; rebuild the profile",
                    )
                })?)
            }
        };
        self.core.set_joint(reference);
        Ok(())
    }

    /// Start a warm-up (none may be running).
    fn start_warmup(&mut self) {
        self.core.restart_warmup();
    }

    /// Approximate bytes of the model's state by part (`(part, bytes)` pairs).
    fn footprint(&self) -> Vec<(&'static str, usize)> {
        self.core.footprint()
    }

    #[getter]
    fn warming_up(&self) -> bool {
        self.core.warmup.is_some()
    }

    #[getter]
    fn model_version(&self) -> Option<String> {
        self.core.model_version.clone()
    }

    #[getter]
    fn max_time(&self) -> Option<i64> {
        self.core.max_time
    }

    #[getter]
    fn cursor(&self) -> usize {
        self.core.cursor
    }

    #[getter]
    fn events(&self) -> u64 {
        self.core.events
    }

    /// Keys of the open windows, in the order they opened.
    fn open_keys(&self) -> Vec<i64> {
        self.core.open.iter().map(|(k, _)| *k).collect()
    }

    /// (count, first event time) of open window `key`, or None.
    fn window_state(&self, key: i64) -> Option<(u64, Option<i64>)> {
        self.core
            .open
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, w)| (w.count, w.first))
    }

    /// Detections so far of each (signal, detector), in order.
    fn detections(&self) -> Vec<Vec<u64>> {
        let mut counts: Vec<Vec<u64>> = self
            .core
            .signals
            .iter()
            .map(|s| s.detectors.iter().map(|d| d.detections).collect())
            .collect();
        if !self.core.joint_detectors.is_empty() {
            counts.push(
                self.core
                    .joint_detectors
                    .iter()
                    .map(|d| d.detections)
                    .collect(),
            );
        }
        counts
    }

    /// Start counting this model's events of `batch` at `positions`: returns (runs, pause,
    /// what), pause being "close", "warmup" or "done"; after a close or warm-up call resume().
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        batch: Py<PyBatch>,
        positions: Vec<usize>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        self.batch = Some(batch);
        self.positions = positions;
        self.core.begin();
        self.run_step(py)
    }

    /// Go on after a pause.
    fn resume<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.run_step(py)
    }

    /// Pickle support: the state bytes, restored by `_restore_model_core`.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        if self.batch.is_some() || !self.core.pending.is_empty() {
            return Err(PyValueError::new_err(
                "a model core cannot be saved in the middle of a batch",
            ));
        }
        let mut out = Writer::default();
        out.u8(CORE_STATE_VERSION);
        write_core(&self.core, &mut out);
        let restore = py
            .import("stream_monitor._native")?
            .getattr("_restore_model_core")?;
        let args = PyTuple::new(py, [PyBytes::new(py, &out.finish())])?;
        PyTuple::new(py, [restore, args.into_any()])
    }

    /// Close every open window (end of a finite stream): the closes, oldest first.
    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let closed = self.core.flush();
        self.closes(py, closed)
    }

    /// Close what the model a segment belongs to closed: a count window's events so far, or
    /// the time windows the watermark of `max_time` (the model's newest event time) passed.
    #[pyo3(signature = (max_time=None))]
    fn close_through<'py>(
        &mut self,
        py: Python<'py>,
        max_time: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        if self.batch.is_some() {
            return Err(PyValueError::new_err(
                "close_through() in the middle of a batch",
            ));
        }
        let closed = self.core.close_through(max_time);
        self.closes(py, closed)
    }
}

impl PyModelCore {
    fn closes<'py>(
        &mut self,
        py: Python<'py>,
        closed: Vec<(i64, Bounds)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for (key, bounds) in closed {
            let (window, late) = self.core.take_window(key);
            out.append(close_py(
                py,
                key,
                bounds,
                &window,
                late,
                self.core.joint_ref.as_ref(),
            )?)?;
        }
        Ok(out)
    }
}

/// Rebuild a model core from its state bytes (pickle's counterpart of `ModelCore.__reduce__`).
#[pyfunction]
pub fn _restore_model_core(state: &[u8]) -> PyResult<PyModelCore> {
    let mut input = Reader::new(state);
    let fail = |e: crate::state::StateError| {
        PyValueError::new_err(format!(
            "cannot restore the model's native state ({e}); the partition starts fresh"
        ))
    };
    let version = input.u8().map_err(fail)?;
    if version != CORE_STATE_VERSION {
        return Err(PyValueError::new_err(format!(
            "model state version {version} is not supported (this build reads \
             {CORE_STATE_VERSION}); the partition starts fresh"
        )));
    }
    let core = read_core(&mut input).map_err(fail)?;
    input.end().map_err(fail)?;
    Ok(PyModelCore {
        core,
        batch: None,
        positions: Vec::new(),
    })
}

/// One change detector of a signal as the core runs it: block means, standardised by the
/// reference (mean, std), clamped, fed to ADWIN or Page-Hinkley. For tests against river.
#[pyclass(module = "stream_monitor._native", name = "SignalDetector")]
pub struct PySignalDetector {
    detector: Detector,
}

#[pymethods]
impl PySignalDetector {
    #[new]
    #[pyo3(signature = (name, delta, mean, std, block=1))]
    fn new(name: &str, delta: f64, mean: f64, std: f64, block: u32) -> PyResult<Self> {
        Detector::new(name, delta, mean, std, block)
            .map(|detector| Self { detector })
            .ok_or_else(|| PyValueError::new_err(format!("no native detector {name:?}")))
    }

    /// Feed one value; true when a completed block made the detector signal.
    fn update(&mut self, value: f64) -> bool {
        self.detector.update(value)
    }

    /// Feed values in order; the indices after which it signalled.
    fn update_many(&mut self, values: Vec<f64>) -> Vec<usize> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, &v)| self.detector.update(v).then_some(i))
            .collect()
    }

    #[getter]
    fn detections(&self) -> u64 {
        self.detector.detections
    }
}

/// Window bookkeeping alone (count or event-time windows), as the model core keeps it.
#[pyclass(module = "stream_monitor._native", name = "WindowClock")]
pub struct PyWindowClock {
    windows: Windows,
}

fn windows_of(window: &Bound<'_, PyTuple>) -> PyResult<Windows> {
    let kind: String = window.get_item(0)?.extract()?;
    match kind.as_str() {
        "count" => Ok(Windows::Count {
            size: window.get_item(1)?.extract::<u64>()?.max(1),
            index: 0,
            count: 0,
            first: None,
            last: None,
        }),
        "time" => {
            let size: i64 = window.get_item(1)?.extract()?;
            let step: i64 = window.get_item(2)?.extract()?;
            if size <= 0 || step <= 0 {
                return Err(PyValueError::new_err(format!(
                    "window size {size} and step {step} must be positive milliseconds"
                )));
            }
            Ok(Windows::Time {
                size,
                step,
                lateness: window.get_item(3)?.extract()?,
                max_time: None,
                open: Vec::new(),
            })
        }
        other => Err(PyValueError::new_err(format!(
            "window kind {other:?} is neither count nor time"
        ))),
    }
}

fn bounds_list(closed: Vec<(i64, Bounds)>) -> Vec<(i64, (i64, i64, i64))> {
    closed
        .into_iter()
        .map(|(key, b)| (key, (b.index, b.start, b.end)))
        .collect()
}

#[pymethods]
impl PyWindowClock {
    /// `window`: ("count", events) or ("time", size_ms, step_ms, lateness_ms).
    #[new]
    fn new(window: &Bound<'_, PyTuple>) -> PyResult<Self> {
        Ok(Self {
            windows: windows_of(window)?,
        })
    }

    /// Keys of the windows an event at `timestamp` belongs to (empty when it is late).
    fn open_windows(&mut self, timestamp: i64) -> Vec<i64> {
        match &mut self.windows {
            Windows::Count { index, .. } => {
                let key = *index;
                self.windows.take(1, timestamp, timestamp);
                vec![key]
            }
            Windows::Time { .. } => self.windows.time_open(timestamp),
        }
    }

    /// Count windows: `events` events at once, of times `first` to `last`.
    fn take(&mut self, events: u64, first: i64, last: i64) {
        self.windows.take(events, first, last);
    }

    /// (key, (index, start, end)) of the windows that closed, oldest first.
    fn closed_windows(&mut self) -> Vec<(i64, (i64, i64, i64))> {
        bounds_list(self.windows.closed())
    }

    /// Close every open window.
    fn flush(&mut self) -> Vec<(i64, (i64, i64, i64))> {
        bounds_list(self.windows.flush())
    }

    /// Count windows: the current window's index.
    #[getter]
    fn index(&self) -> Option<i64> {
        match &self.windows {
            Windows::Count { index, .. } => Some(*index),
            Windows::Time { .. } => None,
        }
    }

    /// Count windows: events in the current window.
    #[getter]
    fn count(&self) -> Option<u64> {
        match &self.windows {
            Windows::Count { count, .. } => Some(*count),
            Windows::Time { .. } => None,
        }
    }

    /// Time windows: largest event time seen minus the allowed lateness.
    #[getter]
    fn watermark(&self) -> Option<i64> {
        match &self.windows {
            Windows::Time {
                max_time, lateness, ..
            } => max_time.map(|m| m - lateness),
            Windows::Count { .. } => None,
        }
    }
}
