//! Binary classification counts of labelled predictions: the confusion counts, the scores per
//! bin of each actual class (ROC AUC) and the log loss, as `BinaryPerformance.add` counts them
//! one by one in Python.

use std::borrow::Cow;

use crate::columns::category_of;
use crate::decode::Value;

const EPS: f64 = 1e-15;

/// A value's class key, as Python's `label_key` gives it: booleans, 0/1 and "true"/"false"
/// (any case) agree with each other; other values are their category string.
pub fn class_key(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Bool(true) | Value::Int(1) => Some(Cow::Borrowed("1")),
        Value::Bool(false) | Value::Int(0) => Some(Cow::Borrowed("0")),
        Value::Float(x) if *x == 1.0 => Some(Cow::Borrowed("1")),
        Value::Float(x) if *x == 0.0 => Some(Cow::Borrowed("0")),
        // Only ASCII letters lower to "true" or "false" in Python's str.lower().
        Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(Cow::Borrowed("1")),
        Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(Cow::Borrowed("0")),
        other => category_of(other),
    }
}

/// One labelled prediction: whether the label and the prediction are the positive class, and
/// its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub actual: bool,
    pub predicted: bool,
    pub score: Option<f64>,
}

/// Confusion counts of some labelled predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
}

impl Confusion {
    /// Count `outcomes`; whether each prediction was wrong.
    pub fn count(outcomes: &[Outcome]) -> (Confusion, Vec<bool>) {
        let mut counts = Confusion::default();
        let wrong = outcomes
            .iter()
            .map(|o| {
                match (o.predicted, o.actual) {
                    (true, true) => counts.tp += 1,
                    (true, false) => counts.fp += 1,
                    (false, true) => counts.fn_ += 1,
                    (false, false) => counts.tn += 1,
                }
                o.predicted != o.actual
            })
            .collect();
        (counts, wrong)
    }
}

/// Count the finite scores of `outcomes` into `bins` (the actual positives' bins, then as many
/// of the negatives'; counts saturate at `u32::MAX`); returns each one's log-loss term (the
/// sum goes down by them, in this order, as one by one).
pub fn bin_scores(outcomes: &[Outcome], bins: &mut [u32]) -> Vec<f64> {
    let width = bins.len() / 2;
    let mut terms = Vec::with_capacity(outcomes.len());
    if width == 0 {
        return terms;
    }
    for outcome in outcomes {
        let Some(score) = outcome.score.filter(|s| s.is_finite()) else {
            continue;
        };
        let clipped = score.clamp(0.0, 1.0);
        let bucket = ((clipped * width as f64) as usize).min(width - 1);
        let count = &mut bins[if outcome.actual {
            bucket
        } else {
            width + bucket
        }];
        *count = count.saturating_add(1);
        let bounded = clipped.clamp(EPS, 1.0 - EPS);
        terms.push(if outcome.actual {
            bounded.ln()
        } else {
            (1.0 - bounded).ln()
        });
    }
    terms
}

/// `sum` after subtracting each log-loss term in order.
pub fn less(sum: f64, terms: &[f64]) -> f64 {
    terms.iter().fold(sum, |total, term| total - term)
}

/// A log-loss sum and the sum of its terms' squares, both continued by `terms` in order (the
/// squares give the loss's standard error, for the performance rule's test).
pub fn less_with_squares((sum, squares): (f64, f64), terms: &[f64]) -> (f64, f64) {
    (
        less(sum, terms),
        terms
            .iter()
            .fold(squares, |total, term| total + term * term),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_keys_agree_across_spellings() {
        for one in [
            Value::Bool(true),
            Value::Int(1),
            Value::Float(1.0),
            Value::Str("TRUE".into()),
            Value::Str("true".into()),
        ] {
            assert_eq!(class_key(&one).as_deref(), Some("1"), "{one:?}");
        }
        for zero in [
            Value::Bool(false),
            Value::Int(0),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Str("False".into()),
        ] {
            assert_eq!(class_key(&zero).as_deref(), Some("0"), "{zero:?}");
        }
        assert_eq!(class_key(&Value::Int(2)).as_deref(), Some("2"));
        assert_eq!(class_key(&Value::Float(0.5)).as_deref(), Some("0.5"));
        assert_eq!(class_key(&Value::Str("cat".into())).as_deref(), Some("cat"));
        assert_eq!(class_key(&Value::Str("1".into())).as_deref(), Some("1"));
        assert_eq!(class_key(&Value::Float(f64::NAN)), None);
        assert_eq!(class_key(&Value::Null), None);
    }

    #[test]
    fn confusion_and_scores_count_as_one_by_one() {
        let outcomes = [
            Outcome {
                actual: true,
                predicted: true,
                score: Some(0.9),
            },
            Outcome {
                actual: false,
                predicted: true,
                score: Some(1.5),
            },
            Outcome {
                actual: true,
                predicted: false,
                score: None,
            },
            Outcome {
                actual: false,
                predicted: false,
                score: Some(f64::NAN),
            },
            Outcome {
                actual: false,
                predicted: false,
                score: Some(0.0),
            },
        ];
        let (counts, wrong) = Confusion::count(&outcomes);
        assert_eq!(
            counts,
            Confusion {
                tp: 1,
                fp: 1,
                fn_: 1,
                tn: 2
            }
        );
        assert_eq!(wrong, [false, true, true, false, false]);
        let mut bins = vec![0_u32; 20];
        let terms = bin_scores(&outcomes, &mut bins);
        assert_eq!(bins[9], 1); // 0.9, a positive
        assert_eq!(bins[10 + 9], 1); // 1.5 clipped to 1.0: the last bin, a negative
        assert_eq!(bins[10], 1); // 0.0, a negative
        assert_eq!(bins.iter().sum::<u32>(), 3);
        assert_eq!(terms.len(), 3);
        assert_eq!(terms[0], 0.9_f64.ln());
        assert_eq!(terms[1], (1.0 - (1.0 - EPS)).ln()); // clipped to 1, bounded below 1
        assert_eq!(less(1.0, &terms), 1.0 - terms[0] - terms[1] - terms[2]);
        let squares = 2.0 + terms[0] * terms[0] + terms[1] * terms[1] + terms[2] * terms[2];
        assert_eq!(
            less_with_squares((1.0, 2.0), &terms),
            (less(1.0, &terms), squares)
        );
    }

    #[test]
    fn full_bins_saturate_and_empty_bins_count_nothing() {
        let outcome = [Outcome {
            actual: true,
            predicted: true,
            score: Some(0.0),
        }];
        let mut bins = vec![u32::MAX, 0];
        assert_eq!(bin_scores(&outcome, &mut bins).len(), 1);
        assert_eq!(bins, [u32::MAX, 0]);
        assert!(bin_scores(&outcome, &mut []).is_empty());
    }
}
