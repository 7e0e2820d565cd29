//! Joining late labels to their predictions by event id, in bounded memory.
//!
//! Predictions wait for their label up to a time-to-live of event time and at most
//! `max_predictions` of them (the oldest evicted first); labels that arrive before their
//! prediction wait too (`max_labels`). Everything dropped is counted, and the windows of
//! predictions that will never get a label are handed back (`dropped`) so that their owner stops
//! waiting for them. Both stores keep insertion order with O(1) removal: a map from id to
//! (sequence, entry) and a queue of (sequence, id) whose stale entries are skipped (and purged
//! when they outnumber the live ones).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::decode::Value;

/// A prediction waiting for its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub windows: Box<[i64]>,
    pub timestamp: i64,
    pub prediction: Value,
    pub score: Option<f64>,
    pub scores: Option<Box<[(String, f64)]>>,
}

/// Entries by id, in insertion order (a re-inserted id moves to the end).
#[derive(Clone, Debug)]
pub struct Ordered<V> {
    map: HashMap<Arc<str>, (u64, V)>,
    order: VecDeque<(u64, Arc<str>)>,
    seq: u64,
}

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
        }
    }
}

impl<V> Ordered<V> {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// Insert at the end; the entry the id had before, if any.
    pub fn insert(&mut self, id: &str, value: V) -> Option<V> {
        self.seq += 1;
        let key: Arc<str> = Arc::from(id);
        let old = self.map.insert(key.clone(), (self.seq, value));
        self.order.push_back((self.seq, key));
        self.compact();
        old.map(|(_, v)| v)
    }

    pub fn remove(&mut self, id: &str) -> Option<V> {
        let removed = self.map.remove(id).map(|(_, v)| v);
        if removed.is_some() {
            self.compact();
        }
        removed
    }

    /// The oldest entry.
    pub fn oldest(&mut self) -> Option<(&str, &V)> {
        self.skip_stale();
        let (_, id) = self.order.front()?;
        self.map.get(id).map(|(_, v)| (&**id, v))
    }

    /// Remove the oldest entry.
    pub fn pop_oldest(&mut self) -> Option<(Arc<str>, V)> {
        self.skip_stale();
        let (_, id) = self.order.pop_front()?;
        let (_, value) = self.map.remove(&id)?;
        Some((id, value))
    }

    /// Entries oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.order
            .iter()
            .filter_map(|(seq, id)| match self.map.get(id) {
                Some((s, v)) if s == seq => Some((&**id, v)),
                _ => None,
            })
    }

    fn live(&self, seq: u64, id: &str) -> bool {
        matches!(self.map.get(id), Some((s, _)) if *s == seq)
    }

    fn skip_stale(&mut self) {
        while let Some((seq, id)) = self.order.front() {
            if self.live(*seq, id) {
                break;
            }
            self.order.pop_front();
        }
    }

    /// Drop stale queue entries once they outnumber the live ones (amortised O(1)).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(seq, id)| matches!(map.get(id), Some((s, _)) if s == seq));
        }
    }
}

/// The bounded join of one model's predictions and labels; `L` is a label.
#[derive(Clone, Debug)]
pub struct Join<L> {
    pub ttl: i64,
    pub max_predictions: usize,
    pub max_labels: usize,
    pub predictions: Ordered<Pending>,
    pub labels: Ordered<(L, i64)>,
    pub counts: BTreeMap<&'static str, u64>,
    /// Windows of predictions dropped unlabelled (evicted, expired or replaced).
    pub dropped: Vec<Box<[i64]>>,
}

/// The names `counts` uses.
pub const COUNTS: [&str; 5] = [
    "matched",
    "matched_early",
    "evicted_predictions",
    "expired_predictions",
    "unmatched_labels",
];

impl<L> Join<L> {
    pub fn new(ttl: i64, max_predictions: usize, max_labels: usize) -> Self {
        Self {
            ttl,
            max_predictions,
            max_labels,
            predictions: Ordered::default(),
            labels: Ordered::default(),
            counts: BTreeMap::new(),
            dropped: Vec::new(),
        }
    }

    fn count(&mut self, name: &'static str) {
        *self.counts.entry(name).or_insert(0) += 1;
    }

    /// Register a prediction; an early label (label, label time) if one waited for it.
    pub fn add_prediction(&mut self, id: &str, pending: Pending) -> Option<(L, i64)> {
        if let Some(early) = self.labels.remove(id) {
            self.count("matched_early");
            return Some(early);
        }
        if let Some(replaced) = self.predictions.insert(id, pending) {
            self.dropped.push(replaced.windows); // the same id again: the first waits no more
        }
        if self.predictions.len() > self.max_predictions {
            if let Some((_, evicted)) = self.predictions.pop_oldest() {
                self.count("evicted_predictions");
                self.dropped.push(evicted.windows);
            }
        }
        None
    }

    /// Match a label: the waiting prediction, or None (the label waits for it).
    pub fn add_label(&mut self, id: &str, label: L, timestamp: i64) -> Option<Pending> {
        if let Some(pending) = self.predictions.remove(id) {
            self.count("matched");
            return Some(pending);
        }
        self.labels.insert(id, (label, timestamp));
        if self.labels.len() > self.max_labels {
            self.labels.pop_oldest();
            self.count("unmatched_labels");
        }
        None
    }

    /// Drop predictions and labels older than the time-to-live at event time `now`, oldest
    /// first, stopping at the first that is not.
    pub fn expire(&mut self, now: i64) {
        let horizon = now.saturating_sub(self.ttl);
        while let Some((_, pending)) = self.predictions.oldest() {
            if pending.timestamp >= horizon {
                break;
            }
            if let Some((_, pending)) = self.predictions.pop_oldest() {
                self.count("expired_predictions");
                self.dropped.push(pending.windows);
            }
        }
        while let Some((_, (_, timestamp))) = self.labels.oldest() {
            if *timestamp >= horizon {
                break;
            }
            self.labels.pop_oldest();
            self.count("unmatched_labels");
        }
    }

    /// The dropped predictions' windows, counted per window (in key order), and forgotten.
    pub fn take_dropped(&mut self) -> Vec<(i64, u64)> {
        let mut per: BTreeMap<i64, u64> = BTreeMap::new();
        for windows in self.dropped.drain(..) {
            for &key in windows.iter() {
                *per.entry(key).or_insert(0) += 1;
            }
        }
        per.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(t: i64) -> Pending {
        Pending {
            windows: vec![0].into_boxed_slice(),
            timestamp: t,
            prediction: Value::Int(1),
            score: Some(0.9),
            scores: None,
        }
    }

    #[test]
    fn matches_waits_evicts_expires_and_counts() {
        let mut join: Join<i64> = Join::new(1_000, 2, 1);
        assert!(join.add_prediction("a", pending(0)).is_none());
        assert_eq!(join.add_label("a", 1, 10), Some(pending(0)));
        assert!(join.add_label("early", 0, 20).is_none());
        assert_eq!(join.add_prediction("early", pending(0)), Some((0, 20)));
        for id in ["b", "c", "d"] {
            join.add_prediction(id, pending(0)); // d evicts b
        }
        let ids: Vec<&str> = join.predictions.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["c", "d"]);
        join.add_label("x", 1, 0);
        join.add_label("y", 1, 5_000); // evicts x: never matched
        join.expire(5_500); // c and d expire, y stays
        assert!(join.predictions.is_empty());
        let labels: Vec<&str> = join.labels.iter().map(|(id, _)| id).collect();
        assert_eq!(labels, ["y"]);
        join.expire(10_000);
        assert!(join.labels.is_empty());
        assert_eq!(join.take_dropped(), vec![(0, 3)]);
        assert!(join.take_dropped().is_empty());
        let counts: Vec<(&str, u64)> = join.counts.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            counts,
            [
                ("evicted_predictions", 1),
                ("expired_predictions", 2),
                ("matched", 1),
                ("matched_early", 1),
                ("unmatched_labels", 2),
            ]
        );
    }

    #[test]
    fn a_repeated_id_replaces_and_drops_the_first() {
        let mut join: Join<i64> = Join::new(1_000, 10, 10);
        join.add_prediction("a", pending(1));
        join.add_prediction("b", pending(2));
        join.add_prediction("a", pending(3)); // moves to the end
        let ids: Vec<&str> = join.predictions.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(join.take_dropped(), vec![(0, 1)]);
        assert_eq!(join.add_label("a", 0, 4).map(|p| p.timestamp), Some(3));
    }

    #[test]
    fn stale_order_entries_are_purged() {
        let mut join: Join<i64> = Join::new(i64::MAX, 1_000_000, 10);
        for i in 0..10_000 {
            let id = format!("e{i}");
            join.add_prediction(&id, pending(i));
            join.add_label(&id, 1, i);
        }
        assert!(join.predictions.is_empty());
        assert!(join.predictions.order.len() <= 64 + 1);
        join.add_prediction("last", pending(0));
        assert_eq!(join.predictions.oldest().map(|(id, _)| id), Some("last"));
    }
}
