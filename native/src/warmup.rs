//! The warm-up sample a reference is learnt from.

use crate::decode::{Prediction, Value};
use crate::mapped::Mapped;

/// One warm-up column, as the Python warm-up keeps it: numbers (NaN = missing) until a value
/// of another type arrives, then the values themselves (earlier numbers kept as floats).
#[derive(Clone, Debug)]
pub enum WarmColumn {
    Numbers(Mapped<f64>),
    Values(Mapped<Value>),
}

impl WarmColumn {
    fn len(&self) -> usize {
        match self {
            WarmColumn::Numbers(v) => v.len(),
            WarmColumn::Values(v) => v.len(),
        }
    }

    fn pad(&mut self) {
        match self {
            WarmColumn::Numbers(v) => v.push(f64::NAN),
            WarmColumn::Values(v) => v.push(Value::Null),
        }
    }

    fn push(&mut self, value: &Value) {
        if let WarmColumn::Numbers(numbers) = self {
            match value {
                Value::Float(x) => return numbers.push(*x),
                Value::Int(i) => return numbers.push(*i as f64),
                Value::BigInt(d) => return numbers.push(d.parse().unwrap_or(f64::INFINITY)),
                Value::Null => return numbers.push(f64::NAN),
                Value::Str(_) | Value::Bool(_) => {
                    let mut values = Mapped::with_capacity(numbers.capacity());
                    for &x in numbers.iter() {
                        values.push(if x.is_nan() {
                            Value::Null
                        } else {
                            Value::Float(x)
                        });
                    }
                    *self = WarmColumn::Values(values);
                }
            }
        }
        if let WarmColumn::Values(values) = self {
            values.push(value.clone());
        }
    }
}

/// The first events of a model, kept column by column to learn its reference. The columns are
/// mapped memory (see [`Mapped`]): freed whole when the warm-up ends.
#[derive(Clone, Debug)]
pub struct Warmup {
    pub size: u64,
    pub count: u64,
    pub columns: Vec<(String, WarmColumn)>,
    pub scores: Mapped<f64>,
    pub predictions: Mapped<Value>,
}

impl Warmup {
    /// A warm-up of `size` events; `categorical` features keep their values exactly.
    pub fn new(size: u64, categorical: &[String]) -> Self {
        let size_ = size as usize;
        Self {
            size,
            count: 0,
            // Columns take their full size at once: no regrowth.
            columns: categorical
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        WarmColumn::Values(Mapped::with_capacity(size_)),
                    )
                })
                .collect(),
            scores: Mapped::with_capacity(size_),
            predictions: Mapped::with_capacity(size_),
        }
    }

    /// Keep one event; true when enough have been seen.
    pub(crate) fn add(&mut self, event: &Prediction) -> bool {
        let count = self.count as usize;
        for (name, value) in &event.features {
            let at = match self.columns.iter().position(|(n, _)| **n == **name) {
                Some(at) => at,
                None => {
                    let mut numbers = Mapped::with_capacity((self.size as usize).max(count + 1));
                    for _ in 0..count {
                        numbers.push(f64::NAN);
                    }
                    self.columns
                        .push((name.to_string(), WarmColumn::Numbers(numbers)));
                    self.columns.len() - 1
                }
            };
            self.columns[at].1.push(value);
        }
        self.count += 1;
        for (_, column) in &mut self.columns {
            if column.len() < count + 1 {
                column.pad();
            }
        }
        self.scores.push(event.score.unwrap_or(f64::NAN));
        self.predictions.push(event.prediction.clone());
        self.count >= self.size
    }
}
