//! The Python view of a decoded batch: `Batch` (the records of one partition batch, parsed
//! with the GIL released by `decode_batch`), the values as the schema gives them, and the
//! rules for releasing the GIL and reporting a panic of the core.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::binary::{bin_scores, class_key, less_with_squares, Confusion, Outcome};
use crate::decode::{decode_prediction, Decoder, Limits, Prediction, Value};
use crate::segment;

/// A decoded value as the Python object the schema would give.
pub fn value_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BigInt(digits) => py
            .get_type::<pyo3::types::PyInt>()
            .call1((digits.as_str(),))?,
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

/// One partition batch of prediction records, decoded natively.
#[pyclass(module = "stream_monitor._native", name = "Batch")]
pub struct PyBatch {
    pub(crate) events: Vec<Option<Prediction>>,
    limits: Limits,
}

impl PyBatch {
    /// Each record's event, or None where it was deferred.
    pub fn events(&self) -> &[Option<Prediction>] {
        &self.events
    }
}

#[pymethods]
impl PyBatch {
    /// Positions the native decoder deferred to the schema.
    fn deferred(&self) -> Vec<usize> {
        (0..self.events.len())
            .filter(|&i| self.events[i].is_none())
            .collect()
    }

    /// Put an event the schema accepted at `position`, as its canonical bytes; False when it
    /// still cannot be read natively.
    fn fill(&mut self, position: usize, data: &[u8]) -> PyResult<bool> {
        let limits = Limits {
            big_integers: true,
            max_event_bytes: usize::MAX,
            ..self.limits.clone()
        };
        let slot = self
            .events
            .get_mut(position)
            .ok_or_else(|| PyValueError::new_err(format!("no record at position {position}")))?;
        *slot = decode_prediction(data, &limits);
        Ok(slot.is_some())
    }

    /// Forget the event at `position` (refused after all, e.g. an unknown model).
    fn drop(&mut self, position: usize) {
        if let Some(slot) = self.events.get_mut(position) {
            *slot = None;
        }
    }

    /// (model id, positions) of the events in `start..stop` (all by default), models in
    /// order of first appearance.
    #[pyo3(signature = (start=0, stop=None))]
    fn models(&self, start: usize, stop: Option<usize>) -> Vec<(String, Vec<usize>)> {
        let mut order: Vec<(String, Vec<usize>)> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let stop = stop.unwrap_or(self.events.len()).min(self.events.len());
        for (i, event) in self.events.iter().enumerate().take(stop).skip(start) {
            let Some(event) = event else { continue };
            match seen.get(event.model_id.as_str()) {
                Some(&at) => order[at].1.push(i),
                None => {
                    seen.insert(&event.model_id, order.len());
                    order.push((event.model_id.clone(), vec![i]));
                }
            }
        }
        order
    }

    /// The events at `positions` grouped by their value of segmentation `by` (a `segments.by`
    /// entry: `model_version`, `metadata.<key>` or a feature): (value, positions), values in
    /// order of first appearance; `__missing__` for events without the value.
    fn segments(&self, positions: Vec<usize>, by: &str) -> PyResult<Vec<(String, Vec<usize>)>> {
        let mut events = Vec::with_capacity(positions.len());
        for i in positions {
            let Some(Some(event)) = self.events.get(i) else {
                return Err(PyValueError::new_err(format!("no event at position {i}")));
            };
            events.push((i, event));
        }
        Ok(segment::group(&segment::By::parse(by), events))
    }

    /// What the label join and performance need of events `positions`: event ids, times,
    /// predictions, scores, per-class scores and inline labels, as lists.
    #[allow(clippy::type_complexity)]
    fn outcomes<'py>(
        &self,
        py: Python<'py>,
        positions: Vec<usize>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (ids, times, predictions, scores, per_class, labels) = (
            PyList::empty(py),
            PyList::empty(py),
            PyList::empty(py),
            PyList::empty(py),
            PyList::empty(py),
            PyList::empty(py),
        );
        for i in positions {
            let Some(Some(event)) = self.events.get(i) else {
                return Err(PyValueError::new_err(format!("no event at position {i}")));
            };
            ids.append(&event.event_id)?;
            times.append(event.timestamp)?;
            predictions.append(value_py(py, &event.prediction)?)?;
            scores.append(event.score)?;
            match &event.scores {
                None => per_class.append(py.None())?,
                Some(s) => {
                    let dict = PyDict::new(py);
                    for (k, v) in s {
                        dict.set_item(k, v)?;
                    }
                    per_class.append(dict)?;
                }
            }
            match &event.label {
                None => labels.append(py.None())?,
                Some(label) => labels.append(value_py(py, label)?)?,
            }
        }
        PyTuple::new(py, [ids, times, predictions, scores, per_class, labels])
    }

    /// Binary performance of events `positions` when every one carries its label: None, and
    /// nothing counted, when one does not. Else the labelled scores go into each score
    /// histogram of `histograms` (one per window the events count in; its log-loss sum and sum
    /// of squares in `sums`), every score into each of `scored` by the predicted class instead
    /// of the label (estimation), and it returns (tp, fp, fn, tn, those sums after, scores counted,
    /// whether any event has a score, wrong per event, hit per event: the label's class key
    /// equals the prediction's).
    #[allow(clippy::type_complexity)]
    fn binary_labelled(
        &self,
        py: Python<'_>,
        positions: Vec<usize>,
        positive: &str,
        histograms: Vec<Bound<'_, PyAny>>,
        sums: Vec<(f64, f64)>,
        scored: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<Option<BinaryCounts>> {
        if histograms.len() != sums.len() {
            return Err(PyValueError::new_err(
                "one log-loss sum per score histogram",
            ));
        }
        let mut outcomes = Vec::with_capacity(positions.len());
        let mut guesses = Vec::with_capacity(positions.len());
        let mut hits = Vec::with_capacity(positions.len());
        for i in positions {
            let Some(Some(event)) = self.events.get(i) else {
                return Err(PyValueError::new_err(format!("no event at position {i}")));
            };
            let Some(label) = &event.label else {
                return Ok(None);
            };
            let (actual, predicted) = (class_key(label), class_key(&event.prediction));
            let predicted_positive = predicted.as_deref() == Some(positive);
            outcomes.push(Outcome {
                actual: actual.as_deref() == Some(positive),
                predicted: predicted_positive,
                score: event.score,
            });
            // counted as if the predicted class were the label
            guesses.push(Outcome {
                actual: predicted_positive,
                predicted: predicted_positive,
                score: event.score,
            });
            hits.push(actual == predicted);
        }
        let (counts, wrong) = Confusion::count(&outcomes);
        let mut after = Vec::with_capacity(sums.len());
        let mut counted = 0;
        for (histogram, sum) in histograms.iter().zip(sums) {
            let terms = with_score_bins(py, histogram, |bins| bin_scores(&outcomes, bins))?;
            counted = terms.len() as u64;
            after.push(less_with_squares(sum, &terms));
        }
        let any_score = outcomes.iter().any(|o| o.score.is_some());
        if any_score {
            for histogram in &scored {
                with_score_bins(py, histogram, |bins| bin_scores(&guesses, bins))?;
            }
        }
        Ok(Some((
            counts.tp, counts.fp, counts.fn_, counts.tn, after, counted, any_score, wrong, hits,
        )))
    }

    fn __len__(&self) -> usize {
        self.events.len()
    }
}

/// What `Batch.binary_labelled` returns.
type BinaryCounts = (
    u64,
    u64,
    u64,
    u64,
    Vec<(f64, f64)>,
    u64,
    bool,
    Vec<bool>,
    Vec<bool>,
);

/// Decode a partition batch (GIL released): records the native decoder cannot judge are
/// deferred (`Batch.deferred()`), for the schema to decide.
#[pyfunction]
#[pyo3(signature = (records, max_event_bytes=65_536, max_features=1_000, max_string_length=1_024, reject_non_finite=false, trusted=false))]
pub fn decode_batch(
    py: Python<'_>,
    records: Vec<Option<Bound<'_, PyAny>>>,
    max_event_bytes: usize,
    max_features: usize,
    max_string_length: usize,
    reject_non_finite: bool,
    trusted: bool,
) -> PyResult<PyBatch> {
    // trusted: events the schema already accepted, re-encoded (no limits, big integers read)
    let limits = if trusted {
        Limits {
            max_event_bytes: usize::MAX,
            max_features: usize::MAX,
            max_string_length: usize::MAX,
            reject_non_finite: false,
            big_integers: true,
        }
    } else {
        Limits::configured(
            max_event_bytes,
            max_features,
            max_string_length,
            reject_non_finite,
        )
    };
    let slices: Vec<Option<&[u8]>> = records
        .iter()
        .map(|r| {
            r.as_ref()
                .and_then(|r| r.cast::<PyBytes>().ok())
                .map(|b| b.as_bytes())
        })
        .collect();
    let events = detach_if(py, slices.len() >= DETACH_FROM, || {
        catch_unwind(AssertUnwindSafe(|| {
            let mut decoder = Decoder::default();
            slices
                .iter()
                .map(|data| data.and_then(|d| decoder.decode(d, &limits)))
                .collect()
        }))
    })
    .map_err(|panic| internal_error("decoding a batch", &panic))?;
    Ok(PyBatch { events, limits })
}

/// Below this many events, work is done without releasing the GIL.
///
/// Releasing it costs nothing, but taking it back does: while the worker's event loop runs
/// Python, the compute thread waits for the loop to hand the GIL over, up to the switch interval
/// (a millisecond in the worker). A batch of a few events takes microseconds natively, so at low
/// rates (small batches, several calls each) those waits were most of the compute thread's
/// time. From about a hundred events on, the work is long enough for the loop to use the time.
pub(crate) const DETACH_FROM: usize = 128;

/// `work()` with the GIL released when `heavy`, else with it held.
pub(crate) fn detach_if<T: Send>(
    py: Python<'_>,
    heavy: bool,
    work: impl FnOnce() -> T + Send,
) -> T {
    if heavy {
        py.detach(work)
    } else {
        work()
    }
}

/// The error of a panic inside the core (a bug), naming what it was doing.
pub(crate) fn internal_error(what: &str, panic: &Box<dyn std::any::Any + Send>) -> PyErr {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    PyRuntimeError::new_err(format!(
        "the native core failed while {what}: {detail} (a bug)"
    ))
}

/// `count(bins)` on the counts of a score histogram (array('I'): the positives' bins, then as
/// many negatives' bins), written back after.
pub(crate) fn with_score_bins<T>(
    py: Python<'_>,
    histogram: &Bound<'_, PyAny>,
    count: impl FnOnce(&mut [u32]) -> T,
) -> PyResult<T> {
    let buffer = PyBuffer::<u32>::get(histogram)?;
    let mut bins: Vec<u32> = buffer.to_vec(py)?;
    if bins.is_empty() || bins.len() % 2 != 0 {
        return Err(PyValueError::new_err(
            "the score histogram must hold the positives' bins then as many negatives' bins",
        ));
    }
    let out = count(&mut bins);
    buffer.copy_from_slice(py, &bins)?;
    Ok(out)
}
