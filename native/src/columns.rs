//! A run's values as columns: each event's cell of a feature, a numeric column read once, and
//! its values binned on the reference edges once for the window counts, the detectors and the
//! joint moments.

use std::sync::Arc;

use crate::decode::Value;
use crate::features::NumericRef;
use crate::pyrepr::float_repr;

/// The category string of a value, as `reference.category_of` makes it.
pub(crate) fn category_of(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::Null => None,
        Value::Str(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Int(i) => Some(Cow::Owned(i.to_string())),
        Value::BigInt(digits) => Some(Cow::Borrowed(digits)),
        Value::Float(x) if x.is_finite() => Some(Cow::Owned(float_repr(*x))),
        Value::Float(_) => None,
    }
}

/// One event's value of a feature or signal, as a run sees it.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    /// The event does not have the feature.
    Missing,
    Value(&'a Value),
    /// A score (the prediction signal when it is the score).
    Score(Option<f64>),
}

/// A run's values of one numeric feature sorted out: finite numbers and their positions.
#[derive(Debug, Default)]
pub struct NumericColumn {
    pub values: Vec<f64>,
    pub positions: Vec<usize>,
    /// false for booleans (counted in a window, not fed to detectors)
    pub detectable: Vec<bool>,
    pub missing: u64,
    pub non_finite: u64,
    pub invalid: u64,
}

impl NumericColumn {
    pub fn of(cells: &[Cell<'_>]) -> Self {
        let mut column = Self {
            values: Vec::with_capacity(cells.len()),
            positions: Vec::with_capacity(cells.len()),
            detectable: Vec::with_capacity(cells.len()),
            ..Self::default()
        };
        for (i, cell) in cells.iter().enumerate() {
            let (number, detectable) = match cell {
                Cell::Missing | Cell::Value(Value::Null) | Cell::Score(None) => {
                    column.missing += 1;
                    continue;
                }
                Cell::Value(Value::Str(_)) => {
                    column.invalid += 1;
                    continue;
                }
                Cell::Value(Value::Bool(b)) => (f64::from(u8::from(*b)), false),
                Cell::Value(Value::Int(n)) => (*n as f64, true),
                Cell::Value(Value::BigInt(digits)) => (digits.parse().unwrap_or(f64::NAN), true),
                Cell::Value(Value::Float(x)) => (*x, true),
                Cell::Score(Some(x)) => (*x, true),
            };
            if !number.is_finite() {
                column.non_finite += 1;
                continue;
            }
            column.values.push(number);
            column.positions.push(i);
            column.detectable.push(detectable);
        }
        column
    }
}

/// A run's values of one numeric signal read once, for the window counts, the detectors and
/// the joint moments: the column and each value's bin among `reference`'s edges.
pub struct Binned {
    pub column: NumericColumn,
    pub bins: Vec<usize>,
    pub reference: Arc<NumericRef>,
}

impl Binned {
    pub(crate) fn of(cells: &[Cell<'_>], reference: &Arc<NumericRef>) -> Self {
        let column = NumericColumn::of(cells);
        let bins = column
            .values
            .iter()
            .map(|&v| reference.edges.bin_of(v))
            .collect();
        Self {
            column,
            bins,
            reference: Arc::clone(reference),
        }
    }

    /// The normal score of each value (see [`Ranks`]); None without ranks.
    pub(crate) fn scores(&self) -> Option<impl Iterator<Item = f64> + '_> {
        let ranks = self.reference.ranks.as_ref()?;
        Some(self.bins.iter().map(|&b| ranks.normal(b)))
    }
}

/// The [`Binned`] columns of one run: per feature slot, and of the prediction signal.
pub struct RunBins {
    pub features: Vec<Option<Binned>>,
    pub prediction: Option<Binned>,
}
