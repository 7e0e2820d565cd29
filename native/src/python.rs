//! Python bindings: `stream_monitor._native`.
//!
//! Errors become Python exceptions (`ValueError` for bad state bytes); nothing here panics on
//! input, and a panic would surface as PyO3's `PanicException`, never abort the interpreter.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::adwin::Adwin as AdwinCore;
use crate::binary::{bin_scores, less_with_squares, Confusion, Outcome};
use crate::decode::{decode_prediction, Limits, Prediction};
use crate::hddm::Hddma as HddmaCore;
use crate::python_batch::{detach_if, value_py, with_score_bins, DETACH_FROM};
use crate::sketch::LogHistogram as SketchCore;
use crate::state::{Reader, StateError, Writer};
use crate::{special, stats};

/// Version of the state bytes written by `__getstate__`; older or newer ones are refused.
const STATE_VERSION: u8 = 2;

fn state_error(error: StateError) -> PyErr {
    PyValueError::new_err(format!(
        "cannot restore native state ({error}); the snapshot is of another version: start fresh"
    ))
}

fn versioned(write: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut out = Writer::default();
    out.u8(STATE_VERSION);
    write(&mut out);
    out.finish()
}

fn read_versioned<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, StateError>,
) -> PyResult<T> {
    let mut input = Reader::new(bytes);
    let version = input.u8().map_err(state_error)?;
    if version != STATE_VERSION {
        return Err(state_error(StateError(format!(
            "state version {version}, this build reads {STATE_VERSION}"
        ))));
    }
    let value = read(&mut input).map_err(state_error)?;
    input.end().map_err(state_error)?;
    Ok(value)
}

/// Roll hits into a ring of bits (the rolling accuracy): from `position` of a ring of `size`
/// bits, each value (truthy: a hit) replaces the oldest; returns (position after, change of
/// the number of hits in the ring, values added).
#[pyfunction]
fn roll_bits(
    bits: &Bound<'_, pyo3::types::PyByteArray>,
    position: usize,
    size: usize,
    values: &Bound<'_, PyAny>,
) -> PyResult<(usize, i64, usize)> {
    if size == 0 || position >= size || bits.len() * 8 < size {
        return Err(PyValueError::new_err(
            "a ring of bits too small for its size",
        ));
    }
    let hits: Vec<bool> = values
        .try_iter()?
        .map(|v| v.and_then(|v| v.is_truthy()))
        .collect::<PyResult<_>>()?;
    // SAFETY: nothing else runs while the GIL is held and no Python code is called below.
    let ring = unsafe { bits.as_bytes_mut() };
    let (mut at, mut delta) = (position, 0_i64);
    for &hit in &hits {
        let (byte, mask) = (at >> 3, 1_u8 << (at & 7));
        let old = ring[byte] & mask != 0;
        if hit != old {
            ring[byte] ^= mask;
            delta += if hit { 1 } else { -1 };
        }
        at = if at + 1 < size { at + 1 } else { 0 };
    }
    Ok((at, delta, hits.len()))
}

/// Population stability index of two binned samples.
#[pyfunction]
fn psi(reference: Vec<f64>, current: Vec<f64>) -> PyResult<f64> {
    same_length(&reference, &current)?;
    Ok(stats::psi(&reference, &current))
}

/// Fit a joint reference (multivariate drift) on reference columns (NaN = missing), each
/// taken as its normal scores in its feature's reference (percentile `edges` and `counts`, one
/// pair per column): None, or (columns used, mean, sd, kept, discarded components, error mean,
/// error sd, held-out events, correlations, complete events, pair spreads, the detectors'
/// error edges and counts), the float lists as bytes of native doubles.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn fit_joint<'py>(
    py: Python<'py>,
    columns: Vec<Vec<f64>>,
    share: f64,
    references: Vec<(Vec<f64>, Vec<f64>)>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    if !(share > 0.0 && share < 1.0) {
        return Err(PyValueError::new_err(format!(
            "variance share {share} is not between 0 and 1"
        )));
    }
    if references.len() != columns.len() {
        return Err(PyValueError::new_err(format!(
            "{} columns but {} references: one (edges, counts) per column",
            columns.len(),
            references.len()
        )));
    }
    let mut scored = Vec::with_capacity(columns.len());
    for (i, (column, (edges, counts))) in columns.iter().zip(references).enumerate() {
        if counts.len() != edges.len() + 1 {
            return Err(PyValueError::new_err(format!(
                "column {i}: {} counts for {} edges (one more than edges)",
                counts.len(),
                edges.len()
            )));
        }
        let Some(ranks) = crate::ranks::Ranks::of_counts(&counts) else {
            return Err(PyValueError::new_err(format!(
                "column {i}: its reference counts nothing"
            )));
        };
        let edges = crate::features::Edges::new(edges);
        scored.push(crate::joint::normal_scores(column, &edges, &ranks));
    }
    let fitted = py
        .detach(|| {
            std::panic::catch_unwind(|| {
                let slices: Vec<&[f64]> = scored.iter().map(Vec::as_slice).collect();
                crate::joint::fit(&slices, share)
            })
        })
        .map_err(|_| PyValueError::new_err("fitting the joint reference failed (a bug)"))?;
    let Some((used, mean, sd, band)) = fitted else {
        return Ok(None);
    };
    let bytes = |values: &[f64]| {
        PyBytes::new(
            py,
            &values
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect::<Vec<u8>>(),
        )
    };
    let correlations: Vec<f64> = band.correlations.iter().map(|&r| f64::from(r)).collect();
    let items: Vec<Bound<'py, PyAny>> = vec![
        used.into_pyobject(py)?.into_any(),
        bytes(&mean).into_any(),
        bytes(&sd).into_any(),
        band.kept.into_pyobject(py)?.into_any(),
        bytes(&band.discarded).into_any(),
        band.error_mean.into_pyobject(py)?.into_any(),
        band.error_sd.into_pyobject(py)?.into_any(),
        band.held_out.into_pyobject(py)?.into_any(),
        bytes(&correlations).into_any(),
        band.sample_size.into_pyobject(py)?.into_any(),
        bytes(
            &band
                .pair_spread
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>(),
        )
        .into_any(),
        bytes(&band.error_edges).into_any(),
        bytes(&band.error_counts).into_any(),
    ];
    Ok(Some(PyTuple::new(py, items)?))
}

/// Jensen-Shannon distance (base 2) of two binned samples.
#[pyfunction]
fn jensen_shannon(reference: Vec<f64>, current: Vec<f64>) -> PyResult<f64> {
    same_length(&reference, &current)?;
    Ok(stats::jensen_shannon(&reference, &current))
}

/// Chi-square test of homogeneity: (statistic, p-value).
#[pyfunction]
fn chi_square(reference: Vec<f64>, current: Vec<f64>) -> PyResult<(f64, f64)> {
    same_length(&reference, &current)?;
    Ok(stats::chi_square(&reference, &current))
}

/// Two-sample Kolmogorov-Smirnov on binned ECDFs: (D, asymptotic p-value).
#[pyfunction]
fn ks_binned(reference: Vec<f64>, current: Vec<f64>) -> PyResult<(f64, f64)> {
    same_length(&reference, &current)?;
    Ok(stats::ks_binned(&reference, &current))
}

/// Wasserstein-1 distance on binned ECDFs, divided by `scale`.
#[pyfunction]
fn wasserstein_binned(
    reference: Vec<f64>,
    current: Vec<f64>,
    widths: Vec<f64>,
    scale: f64,
) -> PyResult<f64> {
    same_length(&reference, &current)?;
    same_length(&reference, &widths)?;
    Ok(stats::wasserstein_binned(
        &reference, &current, &widths, scale,
    ))
}

/// P(X > x) for a chi-square variable with `df` degrees of freedom.
#[pyfunction]
fn chi2_sf(x: f64, df: u32) -> f64 {
    special::chi2_sf(x, df)
}

/// P(X > k) for a binomial X (n trials of probability p).
#[pyfunction]
fn binom_sf(k: i64, n: u64, p: f64) -> f64 {
    special::binom_sf(k, n, p)
}

/// P(X <= k) for a binomial X (n trials of probability p).
#[pyfunction]
fn binom_cdf(k: i64, n: u64, p: f64) -> f64 {
    special::binom_cdf(k, n, p)
}

/// P(Z > x) for a standard normal Z.
#[pyfunction]
fn norm_sf(x: f64) -> f64 {
    special::norm_sf(x)
}

/// P(K > x) for Kolmogorov's distribution.
#[pyfunction]
fn kolmogorov_sf(x: f64) -> f64 {
    special::kolmogorov_sf(x)
}

fn same_length(a: &[f64], b: &[f64]) -> PyResult<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "bin counts differ in length ({} and {}); bin both on the same reference",
            a.len(),
            b.len()
        )))
    }
}

/// ADWIN with river's arithmetic (same detections as `river.drift.ADWIN`).
#[pyclass(module = "stream_monitor._native", name = "Adwin")]
#[derive(Clone)]
struct PyAdwin {
    core: AdwinCore,
}

#[pymethods]
impl PyAdwin {
    #[new]
    #[pyo3(signature = (delta=0.002, clock=32))]
    fn new(delta: f64, clock: u32) -> PyResult<Self> {
        if !(delta > 0.0 && delta < 1.0) {
            return Err(PyValueError::new_err(format!(
                "delta {delta} must be between 0 and 1 (exclusive)"
            )));
        }
        Ok(Self {
            core: AdwinCore::new(delta, clock),
        })
    }

    /// Add one value; true when it made the detector signal a change.
    fn update(&mut self, value: f64) -> bool {
        self.core.update(value)
    }

    /// Feed values in order; the indices after which a change was signalled.
    fn update_many(&mut self, py: Python<'_>, values: Vec<f64>) -> Vec<usize> {
        let core = &mut self.core;
        detach_if(py, values.len() >= DETACH_FROM, || {
            values
                .iter()
                .enumerate()
                .filter_map(|(i, &v)| core.update(v).then_some(i))
                .collect()
        })
    }

    #[getter]
    fn drift_detected(&self) -> bool {
        self.core.drift_detected
    }

    #[getter]
    fn width(&self) -> f64 {
        self.core.width()
    }

    #[getter]
    fn estimation(&self) -> f64 {
        self.core.estimation()
    }

    fn __getnewargs__(&self) -> (f64, u32) {
        (0.002, 32)
    }

    fn __getstate__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &versioned(|out| self.core.write(out)))
    }

    fn __setstate__(&mut self, state: &[u8]) -> PyResult<()> {
        self.core = read_versioned(state, AdwinCore::read)?;
        Ok(())
    }
}

/// HDDM_A for a 0/1 error stream (same detections as `river.drift.binary.HDDMA`).
#[pyclass(module = "stream_monitor._native", name = "Hddma")]
#[derive(Clone)]
struct PyHddma {
    core: HddmaCore,
}

#[pymethods]
impl PyHddma {
    #[new]
    #[pyo3(signature = (drift_confidence=0.001))]
    fn new(drift_confidence: f64) -> PyResult<Self> {
        if !(drift_confidence > 0.0 && drift_confidence < 1.0) {
            return Err(PyValueError::new_err(format!(
                "drift_confidence {drift_confidence} must be between 0 and 1 (exclusive)"
            )));
        }
        Ok(Self {
            core: HddmaCore::new(drift_confidence),
        })
    }

    /// Add one outcome (1 = error).
    fn update(&mut self, value: f64) {
        self.core.update_many(&[value]);
    }

    /// Add outcomes in order; the indices after which a drift was signalled.
    fn update_many(&mut self, py: Python<'_>, values: Vec<f64>) -> Vec<usize> {
        let core = &mut self.core;
        detach_if(py, values.len() >= DETACH_FROM, || {
            core.update_many(&values)
        })
    }

    #[getter]
    fn drift_detected(&self) -> bool {
        self.core.drift_detected
    }

    fn __getnewargs__(&self) -> (f64,) {
        (0.001,)
    }

    fn __getstate__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &versioned(|out| self.core.write(out)))
    }

    fn __setstate__(&mut self, state: &[u8]) -> PyResult<()> {
        self.core = read_versioned(state, HddmaCore::read)?;
        Ok(())
    }
}

fn prediction_to_py<'py>(py: Python<'py>, event: &Prediction) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("event_id", &event.event_id)?;
    out.set_item("model_id", &event.model_id)?;
    out.set_item("model_version", &event.model_version)?;
    out.set_item("timestamp", event.timestamp)?;
    let features = PyDict::new(py);
    for (name, value) in &event.features {
        features.set_item(&**name, value_py(py, value)?)?;
    }
    out.set_item("features", features)?;
    out.set_item("non_finite_features", PyList::new(py, &event.non_finite)?)?;
    out.set_item("prediction", value_py(py, &event.prediction)?)?;
    out.set_item("score", event.score)?;
    let scores = match &event.scores {
        None => None,
        Some(scores) => {
            let dict = PyDict::new(py);
            for (name, value) in scores {
                dict.set_item(name, value)?;
            }
            Some(dict)
        }
    };
    out.set_item("scores", scores)?;
    let label = match &event.label {
        None => py.None().into_bound(py),
        Some(label) => value_py(py, label)?,
    };
    out.set_item("label", label)?;
    out.set_item("latency_ms", event.latency_ms)?;
    Ok(out)
}

/// Decode prediction events natively: per record, its fields as a dict, or None where the
/// record is deferred to the Python schema (which converts it or says what is wrong).
///
/// For inspection and for the tests that hold the decoder to the schema; the batch core
/// decodes straight into its own state.
#[pyfunction]
#[pyo3(signature = (records, max_event_bytes=65_536, max_features=1_000, max_string_length=1_024, reject_non_finite=false))]
fn decode_predictions<'py>(
    py: Python<'py>,
    records: Vec<Option<Bound<'py, PyAny>>>,
    max_event_bytes: usize,
    max_features: usize,
    max_string_length: usize,
    reject_non_finite: bool,
) -> PyResult<Vec<Option<Bound<'py, PyDict>>>> {
    let batch = crate::python_batch::decode_batch(
        py,
        records,
        max_event_bytes,
        max_features,
        max_string_length,
        reject_non_finite,
        false,
    )?;
    let decoded = batch.events();
    decoded
        .iter()
        .map(|event| event.as_ref().map(|e| prediction_to_py(py, e)).transpose())
        .collect()
}

/// Whether one record is a prediction event the native decoder accepts under these limits (the
/// same decision as the schema's; false also where it defers to the schema). One call per event
/// for emitters: no batch, no Python objects made.
#[pyfunction]
#[pyo3(signature = (record, max_event_bytes=65_536, max_features=1_000, max_string_length=1_024, reject_non_finite=false))]
fn accepts_prediction(
    record: &[u8],
    max_event_bytes: usize,
    max_features: usize,
    max_string_length: usize,
    reject_non_finite: bool,
) -> bool {
    let limits = Limits::configured(
        max_event_bytes,
        max_features,
        max_string_length,
        reject_non_finite,
    );
    std::panic::catch_unwind(|| decode_prediction(record, &limits).is_some()).unwrap_or(false)
}

/// The canonical class key of a label or prediction (`performance.label_key`): booleans, 0/1
/// and "true"/"false" agree with each other; other values are their category string, or None.
fn label_key<'py>(value: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyString>>> {
    let py = value.py();
    let one = || Some(intern!(py, "1").clone());
    let zero = || Some(intern!(py, "0").clone());
    if let Ok(text) = value.cast_exact::<PyString>() {
        let s = text.to_str()?;
        let lowered = if s.is_ascii() {
            s.to_ascii_lowercase()
        } else {
            text.call_method0(intern!(py, "lower"))?
                .extract::<String>()?
        };
        return Ok(match lowered.as_str() {
            "true" => one(),
            "false" => zero(),
            _ => Some(text.clone()),
        });
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(if flag.is_true() { one() } else { zero() });
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(match value.extract::<i64>() {
            Ok(1) => one(),
            Ok(0) => zero(),
            _ => Some(value.str()?), // int's str is its repr
        });
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let x = float.value();
        return Ok(if x == 1.0 {
            one()
        } else if x == 0.0 {
            zero()
        } else if x.is_finite() {
            Some(value.repr()?)
        } else {
            None
        });
    }
    if value.is_instance_of::<PyString>() {
        // a str subclass: as Python's label_key does, by value
        return label_key(&PyString::new(py, &value.extract::<String>()?).into_any());
    }
    Ok(None)
}

/// `label_key` of each value.
#[pyfunction]
fn label_keys<'py>(values: &Bound<'py, PyAny>) -> PyResult<Vec<Option<Bound<'py, PyString>>>> {
    values.try_iter()?.map(|v| label_key(&v?)).collect()
}

/// Binary performance counts of labelled predictions, in order: returns
/// (tp, fp, fn, tn, (log-loss sum, sum of its terms' squares), log-loss count, wrong per
/// prediction). Scores land in the 100-bin histograms `pos_scores`/`neg_scores` (array('q'),
/// updated in place); the log-loss sums continue from `log_loss` in the same order of
/// additions as one by one.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pyfunction]
fn binary_add_many(
    py: Python<'_>,
    label_classes: Vec<Option<PyBackedStr>>,
    predicted_classes: Vec<Option<PyBackedStr>>,
    positive: &str,
    scores: Vec<Option<f64>>,
    histogram: &Bound<'_, PyAny>,
    log_loss: (f64, f64),
) -> PyResult<(u64, u64, u64, u64, (f64, f64), u64, Vec<bool>)> {
    if label_classes.len() != predicted_classes.len() || scores.len() != label_classes.len() {
        return Err(PyValueError::new_err(
            "labels, predictions and scores must be of the same length",
        ));
    }
    let outcomes: Vec<Outcome> = label_classes
        .iter()
        .zip(&predicted_classes)
        .zip(&scores)
        .map(|((label, predicted), &score)| Outcome {
            actual: label.as_deref() == Some(positive),
            predicted: predicted.as_deref() == Some(positive),
            score,
        })
        .collect();
    let (counts, wrong) = Confusion::count(&outcomes);
    let terms = with_score_bins(py, histogram, |bins| bin_scores(&outcomes, bins))?;
    Ok((
        counts.tp,
        counts.fp,
        counts.fn_,
        counts.tn,
        less_with_squares(log_loss, &terms),
        terms.len() as u64,
        wrong,
    ))
}

/// Counts of non-negative values in 2%-wide logarithmic buckets: latencies, lags, label delays.
#[pyclass(module = "stream_monitor._native", name = "LogHistogram", eq)]
#[derive(Clone, Default, PartialEq)]
struct PyLogHistogram {
    core: SketchCore,
}

#[pymethods]
impl PyLogHistogram {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Record one value; negative values count as zero.
    fn add(&mut self, value: f64) {
        self.core.add(value);
    }

    /// Record several values.
    fn add_many(&mut self, values: Vec<f64>) {
        for value in values {
            self.core.add(value);
        }
    }

    /// Record `count` zeros (labels that came with their predictions: no delay).
    fn add_zeros(&mut self, count: u64) {
        self.core.count += count;
        self.core.zeros += count;
    }

    /// Add another sketch's counts.
    fn merge(&mut self, other: &Self) {
        self.core.merge(&other.core);
    }

    /// The q-quantile (0..1), as the upper bound of its bucket; None when empty.
    fn quantile(&self, q: f64) -> Option<f64> {
        self.core.quantile(q)
    }

    /// p50, p95, p99 and max (empty before the first value).
    fn percentiles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        if self.core.count > 0 {
            out.set_item("p50", self.core.quantile(0.5))?;
            out.set_item("p95", self.core.quantile(0.95))?;
            out.set_item("p99", self.core.quantile(0.99))?;
            out.set_item("max", self.core.maximum)?;
        }
        Ok(out)
    }

    #[getter]
    fn count(&self) -> u64 {
        self.core.count
    }

    #[getter]
    fn zeros(&self) -> u64 {
        self.core.zeros
    }

    #[getter]
    fn maximum(&self) -> f64 {
        self.core.maximum
    }

    fn __getstate__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &versioned(|out| self.core.write(out)))
    }

    fn __setstate__(&mut self, state: &[u8]) -> PyResult<()> {
        self.core = read_versioned(state, SketchCore::read)?;
        Ok(())
    }
}

/// Kafka's partition (of `count`) for a record with this key: the Java client's murmur2.
#[pyfunction]
fn key_partition(key: &[u8], count: usize) -> usize {
    crate::partition::partition_of(key, count)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("STATE_VERSION", STATE_VERSION)?;
    m.add_function(wrap_pyfunction!(psi, m)?)?;
    m.add_function(wrap_pyfunction!(roll_bits, m)?)?;
    m.add_function(wrap_pyfunction!(key_partition, m)?)?;
    m.add_function(wrap_pyfunction!(fit_joint, m)?)?;
    m.add_function(wrap_pyfunction!(jensen_shannon, m)?)?;
    m.add_function(wrap_pyfunction!(chi_square, m)?)?;
    m.add_function(wrap_pyfunction!(ks_binned, m)?)?;
    m.add_function(wrap_pyfunction!(wasserstein_binned, m)?)?;
    m.add_function(wrap_pyfunction!(chi2_sf, m)?)?;
    m.add_function(wrap_pyfunction!(kolmogorov_sf, m)?)?;
    m.add_function(wrap_pyfunction!(binom_sf, m)?)?;
    m.add_function(wrap_pyfunction!(binom_cdf, m)?)?;
    m.add_function(wrap_pyfunction!(norm_sf, m)?)?;
    m.add_function(wrap_pyfunction!(decode_predictions, m)?)?;
    m.add_function(wrap_pyfunction!(accepts_prediction, m)?)?;
    m.add_function(wrap_pyfunction!(label_keys, m)?)?;
    m.add_function(wrap_pyfunction!(binary_add_many, m)?)?;
    m.add_class::<PyLogHistogram>()?;
    m.add_class::<PyAdwin>()?;
    m.add_class::<crate::python_batch::PyBatch>()?;
    m.add_class::<crate::python_core::PyModelCore>()?;
    m.add_class::<crate::python_core::PySignalDetector>()?;
    m.add_class::<crate::python_core::PyWindowClock>()?;
    m.add_function(wrap_pyfunction!(crate::python_batch::decode_batch, m)?)?;
    m.add_function(wrap_pyfunction!(
        crate::python_core::_restore_model_core,
        m
    )?)?;
    m.add_class::<PyHddma>()?;
    m.add_class::<crate::python_join::PyPendingJoin>()?;
    m.add_function(wrap_pyfunction!(
        crate::python_join::_restore_pending_join,
        m
    )?)?;
    Ok(())
}
