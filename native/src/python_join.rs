//! `stream_monitor._native.PendingJoin`: the label join (`join.rs`) for Python. Its labels
//! are Python objects (kept as given); predictions are read from a decoded batch, one call per
//! run of events, or given one at a time.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::decode::Value;
use crate::join::{Join, Pending};
use crate::python_batch::{value_py, PyBatch};

#[pyclass(module = "stream_monitor._native", name = "PendingJoin")]
pub struct PyPendingJoin {
    join: Join<Py<PyAny>>,
}

/// A class label or number from Python (what `LabelValue` holds).
fn value_of(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(obj.str()?.to_string()),
        });
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract()?));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::Str(obj.extract()?));
    }
    Err(PyTypeError::new_err(format!(
        "a prediction is a string, number or boolean, not {}",
        obj.get_type().name()?
    )))
}

/// Per-class scores as a pending prediction keeps them.
type Scores = Option<Box<[(String, f64)]>>;

/// Labels that came before their predictions: (index in the run, label, label time).
type Early = Vec<(usize, Py<PyAny>, i64)>;

fn scores_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Scores> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            let dict = o.cast::<PyDict>()?;
            let mut out = Vec::with_capacity(dict.len());
            for (k, v) in dict.iter() {
                out.push((k.extract::<String>()?, v.extract::<f64>()?));
            }
            Ok(Some(out.into_boxed_slice()))
        }
    }
}

/// A waiting prediction as Python sees it: (windows, timestamp, prediction, score, scores).
fn pending_py<'py>(py: Python<'py>, pending: &Pending) -> PyResult<Bound<'py, PyTuple>> {
    let scores = match &pending.scores {
        None => py.None().into_bound(py),
        Some(s) => {
            let dict = PyDict::new(py);
            for (k, v) in s.iter() {
                dict.set_item(k, v)?;
            }
            dict.into_any()
        }
    };
    PyTuple::new(
        py,
        [
            PyTuple::new(py, pending.windows.iter())?.into_any(),
            pending.timestamp.into_pyobject(py)?.into_any(),
            value_py(py, &pending.prediction)?,
            pending.score.into_pyobject(py)?.into_any(),
            scores,
        ],
    )
}

#[pymethods]
impl PyPendingJoin {
    #[new]
    fn new(ttl_ms: i64, max_predictions: usize, max_labels: usize) -> PyResult<Self> {
        if ttl_ms < 0 {
            return Err(PyValueError::new_err("ttl_ms must be >= 0"));
        }
        Ok(Self {
            join: Join::new(ttl_ms, max_predictions, max_labels),
        })
    }

    /// Register one prediction; its early label as (label, label time) if one waited.
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments
    #[pyo3(signature = (event_id, windows, timestamp, prediction, score=None, scores=None))]
    fn add_prediction(
        &mut self,
        py: Python<'_>,
        event_id: &str,
        windows: Vec<i64>,
        timestamp: i64,
        prediction: &Bound<'_, PyAny>,
        score: Option<f64>,
        scores: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<(Py<PyAny>, i64)>> {
        let pending = Pending {
            windows: windows.into_boxed_slice(),
            timestamp,
            prediction: value_of(prediction)?,
            score,
            scores: scores_of(scores)?,
        };
        Ok(self
            .join
            .add_prediction(event_id, pending)
            .map(|(label, t)| (label.clone_ref(py), t)))
    }

    /// Register the events of a run (batch `positions`, in windows `keys`) that carry no
    /// label: (how many now wait, [(index in the run, label, label time)] of those whose label
    /// had come first).
    fn add_run(
        &mut self,
        batch: PyRef<'_, PyBatch>,
        positions: Vec<usize>,
        keys: Vec<i64>,
    ) -> PyResult<(usize, Early)> {
        let events = batch.events();
        let windows: Box<[i64]> = keys.into_boxed_slice();
        let mut waiting = 0;
        let mut early = Vec::new();
        for (index, &position) in positions.iter().enumerate() {
            let Some(Some(event)) = events.get(position) else {
                return Err(PyValueError::new_err(format!(
                    "no event at position {position}"
                )));
            };
            if event.label.is_some() {
                continue;
            }
            let pending = Pending {
                windows: windows.clone(),
                timestamp: event.timestamp,
                prediction: event.prediction.clone(),
                score: event.score,
                scores: event.scores.clone().map(Vec::into_boxed_slice),
            };
            match self.join.add_prediction(&event.event_id, pending) {
                Some((label, t)) => early.push((index, label, t)),
                None => waiting += 1,
            }
        }
        Ok((waiting, early))
    }

    /// Match a label: the waiting prediction as (windows, timestamp, prediction, score,
    /// scores), or None (the label waits for its prediction).
    fn add_label<'py>(
        &mut self,
        py: Python<'py>,
        event_id: &str,
        label: Bound<'py, PyAny>,
        timestamp: i64,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        match self.join.add_label(event_id, label.unbind(), timestamp) {
            Some(pending) => Ok(Some(pending_py(py, &pending)?)),
            None => Ok(None),
        }
    }

    /// Forget predictions and labels older than the time-to-live at event time `now`.
    fn expire(&mut self, now: i64) {
        self.join.expire(now);
    }

    /// The windows of predictions dropped unlabelled since the last call: (key, count).
    fn take_dropped(&mut self) -> Vec<(i64, u64)> {
        self.join.take_dropped()
    }

    /// Whether a prediction of this id waits for its label.
    fn waiting(&self, event_id: &str) -> bool {
        self.join.predictions.contains(event_id)
    }

    /// What was matched, dropped and left unmatched, by name (only names counted).
    #[getter]
    fn counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.join.counts.clone()
    }

    /// Ids of the waiting predictions, oldest first.
    fn predictions(&self) -> Vec<String> {
        self.join
            .predictions
            .iter()
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// Ids of the labels waiting for their prediction, oldest first.
    fn labels(&self) -> Vec<String> {
        self.join
            .labels
            .iter()
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// Pickle support: everything as Python values, restored by `_restore_pending_join`.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let predictions = PyList::empty(py);
        for (id, pending) in self.join.predictions.iter() {
            predictions.append((id, pending_py(py, pending)?))?;
        }
        let labels = PyList::empty(py);
        for (id, (label, t)) in self.join.labels.iter() {
            labels.append((id, label.clone_ref(py), *t))?;
        }
        let dropped = PyList::empty(py);
        for windows in &self.join.dropped {
            dropped.append(PyTuple::new(py, windows.iter())?)?;
        }
        let state = (
            self.join.ttl,
            self.join.max_predictions,
            self.join.max_labels,
            predictions,
            labels,
            self.counts(),
            dropped,
        );
        let restore = py
            .import("stream_monitor._native")?
            .getattr("_restore_pending_join")?;
        PyTuple::new(
            py,
            [
                restore,
                PyTuple::new(py, [state.into_pyobject(py)?])?.into_any(),
            ],
        )
    }
}

/// Rebuild a join from `PendingJoin.__reduce__`'s state.
#[allow(clippy::type_complexity)] // the state tuple, read in one go
#[pyfunction]
pub fn _restore_pending_join(state: &Bound<'_, PyTuple>) -> PyResult<PyPendingJoin> {
    let (ttl, max_predictions, max_labels, predictions, labels, counts, dropped): (
        i64,
        usize,
        usize,
        Vec<(String, Bound<'_, PyTuple>)>,
        Vec<(String, Py<PyAny>, i64)>,
        std::collections::BTreeMap<String, u64>,
        Vec<Vec<i64>>,
    ) = state.extract()?;
    let mut join = Join::new(ttl, max_predictions, max_labels);
    for (id, pending) in predictions {
        let (windows, timestamp, prediction, score, scores): (
            Vec<i64>,
            i64,
            Bound<'_, PyAny>,
            Option<f64>,
            Bound<'_, PyAny>,
        ) = pending.extract()?;
        let pending = Pending {
            windows: windows.into_boxed_slice(),
            timestamp,
            prediction: value_of(&prediction)?,
            score,
            scores: scores_of(Some(&scores))?,
        };
        join.predictions.insert(&id, pending);
    }
    for (id, label, t) in labels {
        join.labels.insert(&id, (label, t));
    }
    for (name, count) in counts {
        let known = crate::join::COUNTS
            .iter()
            .find(|k| **k == name)
            .ok_or_else(|| PyValueError::new_err(format!("unknown join count {name:?}")))?;
        join.counts.insert(known, count);
    }
    join.dropped = dropped.into_iter().map(Vec::into_boxed_slice).collect();
    Ok(PyPendingJoin { join })
}
