//! Count windows and event-time windows (tumbling or hopping), and one open window's state.

use std::sync::Arc;

use crate::joint::Joint;
use crate::sketch::LogHistogram;
use crate::window_acc::Acc;

/// The accumulators of one open window.
#[derive(Clone, Debug)]
pub struct Window {
    /// The monitored features when the window opened (`features` follows them).
    pub names: Arc<Vec<String>>,
    pub count: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub features: Vec<Acc>,
    pub prediction: Option<Acc>,
    pub latency: LogHistogram,
    pub lag: LogHistogram,
    /// Joint moments of the numeric features (when the model has a joint reference).
    pub joint: Option<Joint>,
}

/// Count windows or event-time windows (tumbling or hopping), as `monitor.windows`.
#[derive(Clone, Debug)]
pub enum Windows {
    Count {
        size: u64,
        index: i64,
        count: u64,
        first: Option<i64>,
        last: Option<i64>,
    },
    Time {
        size: i64,
        step: i64,
        lateness: i64,
        max_time: Option<i64>,
        open: Vec<i64>,
    },
}

/// Identity and extent of a window (`end` exclusive for time windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub index: i64,
    pub start: i64,
    pub end: i64,
}

impl Windows {
    /// Keys of the still-open time windows the event belongs to (empty when it is late).
    pub fn time_open(&mut self, timestamp: i64) -> Vec<i64> {
        let Windows::Time {
            size,
            step,
            lateness,
            max_time,
            open,
        } = self
        else {
            return Vec::new();
        };
        if max_time.is_none_or(|m| timestamp > m) {
            *max_time = Some(timestamp);
        }
        let watermark = max_time.unwrap_or(timestamp) - *lateness;
        let mut starts = Vec::new();
        let mut start = timestamp - timestamp.rem_euclid(*step);
        while start > timestamp - *size {
            if start + *size > watermark {
                starts.push(start);
            }
            start -= *step;
        }
        starts.reverse();
        for &s in &starts {
            if !open.contains(&s) {
                open.push(s);
            }
        }
        starts
    }

    /// Windows that closed: the full count window, or the time windows the watermark passed.
    pub fn closed(&mut self) -> Vec<(i64, Bounds)> {
        match self {
            Windows::Count {
                size,
                index,
                count,
                first,
                last,
            } => {
                if *count < *size {
                    return Vec::new();
                }
                vec![Self::close_count(index, count, first, last)]
            }
            Windows::Time {
                size,
                step,
                lateness,
                max_time,
                open,
            } => {
                let Some(max_time) = *max_time else {
                    return Vec::new();
                };
                let watermark = max_time - *lateness;
                let mut ready: Vec<i64> = open
                    .iter()
                    .copied()
                    .filter(|s| s + *size <= watermark)
                    .collect();
                ready.sort_unstable();
                open.retain(|s| !ready.contains(s));
                ready
                    .into_iter()
                    .map(|s| (s, time_bounds(s, *size, *step)))
                    .collect()
            }
        }
    }

    /// Close every open window (end of a finite stream).
    pub fn flush(&mut self) -> Vec<(i64, Bounds)> {
        match self {
            Windows::Count {
                index,
                count,
                first,
                last,
                ..
            } => {
                if *count == 0 {
                    return Vec::new();
                }
                vec![Self::close_count(index, count, first, last)]
            }
            Windows::Time {
                size, step, open, ..
            } => {
                let mut all = std::mem::take(open);
                all.sort_unstable();
                all.into_iter()
                    .map(|s| (s, time_bounds(s, *size, *step)))
                    .collect()
            }
        }
    }

    /// Count windows: `events` more events, of times `first` to `last`.
    pub fn take(&mut self, events: u64, first_time: i64, last_time: i64) {
        if let Windows::Count {
            count, first, last, ..
        } = self
        {
            if first.is_none_or(|x| first_time < x) {
                *first = Some(first_time);
            }
            if last.is_none_or(|x| last_time > x) {
                *last = Some(last_time);
            }
            *count += events;
        }
    }

    fn close_count(
        index: &mut i64,
        count: &mut u64,
        first: &mut Option<i64>,
        last: &mut Option<i64>,
    ) -> (i64, Bounds) {
        let bounds = Bounds {
            index: *index,
            start: first.unwrap_or(0),
            end: last.unwrap_or(0),
        };
        let key = *index;
        *index += 1;
        *count = 0;
        *first = None;
        *last = None;
        (key, bounds)
    }
}

/// The bounds of the time window starting at `start`.
fn time_bounds(start: i64, size: i64, step: i64) -> Bounds {
    Bounds {
        index: start.div_euclid(step),
        start,
        end: start + size,
    }
}
