//! Segments: the value of a segmentation (a `segments.by` entry) that each event has.
//!
//! An entry is `model_version`, `metadata.<key>` or the name of a feature. Values are the
//! strings a categorical feature's categories are (`true`, `3`, `0.5`); an event without the
//! value (or with null, or a non-finite number) is in segment [`MISSING`].

use std::borrow::Cow;
use std::collections::HashMap;

use crate::columns::category_of;
use crate::decode::{Prediction, Value};

/// The segment of events that lack the value.
pub const MISSING: &str = "__missing__";

/// What a segmentation reads of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum By {
    Version,
    Metadata(String),
    Feature(String),
}

impl By {
    /// The segmentation a `segments.by` entry names.
    pub fn parse(entry: &str) -> By {
        if entry == "model_version" {
            By::Version
        } else if let Some(key) = entry.strip_prefix("metadata.") {
            By::Metadata(key.to_string())
        } else {
            By::Feature(entry.to_string())
        }
    }

    /// The event's value, [`MISSING`] when it has none.
    pub fn value_of<'e>(&self, event: &'e Prediction) -> Cow<'e, str> {
        let found: Option<Cow<'e, str>> = match self {
            By::Version => event.model_version.as_deref().map(Cow::Borrowed),
            By::Metadata(key) => lookup(&event.metadata, key),
            By::Feature(name) => event
                .features
                .iter()
                .find(|(n, _)| **n == **name)
                .and_then(|(_, v)| category_of(v)),
        };
        found.unwrap_or(Cow::Borrowed(MISSING))
    }
}

fn lookup<'e>(entries: &'e [(String, Value)], key: &str) -> Option<Cow<'e, str>> {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| category_of(v))
}

/// `events` (position, event) grouped by their value: (value, positions), values in order of
/// first appearance, positions in the order given.
pub fn group<'e>(
    by: &By,
    events: impl IntoIterator<Item = (usize, &'e Prediction)>,
) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut seen: HashMap<Cow<'e, str>, usize> = HashMap::new();
    for (position, event) in events {
        let value = by.value_of(event);
        match seen.get(&value) {
            Some(&at) => groups[at].1.push(position),
            None => {
                seen.insert(value.clone(), groups.len());
                groups.push((value.into_owned(), vec![position]));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_prediction, Limits};

    fn event(i: u32, extra: &str) -> Prediction {
        let text = format!(
            r#"{{"event_id":"e{i}","model_id":"m","timestamp":1795800000000,
            "features":{{"x":1.5,"c":"phone","b":true,"n":null}},"prediction":1{extra}}}"#
        );
        decode_prediction(text.as_bytes(), &Limits::default()).expect("a valid event")
    }

    #[test]
    fn entries_name_version_metadata_or_feature() {
        assert_eq!(By::parse("model_version"), By::Version);
        assert_eq!(By::parse("metadata.region"), By::Metadata("region".into()));
        assert_eq!(By::parse("channel"), By::Feature("channel".into()));
    }

    #[test]
    fn values_read_as_categories_and_missing_when_absent() {
        let e = event(
            1,
            r#","model_version":"v2","metadata":{"region":"eu","shard":7}"#,
        );
        assert_eq!(By::Version.value_of(&e), "v2");
        assert_eq!(By::parse("metadata.region").value_of(&e), "eu");
        assert_eq!(By::parse("metadata.shard").value_of(&e), "7");
        assert_eq!(By::parse("metadata.absent").value_of(&e), MISSING);
        assert_eq!(By::parse("c").value_of(&e), "phone");
        assert_eq!(By::parse("b").value_of(&e), "true");
        assert_eq!(By::parse("x").value_of(&e), "1.5");
        assert_eq!(By::parse("n").value_of(&e), MISSING);
        assert_eq!(By::parse("absent").value_of(&e), MISSING);
        let bare = event(2, "");
        assert_eq!(By::Version.value_of(&bare), MISSING);
        assert_eq!(By::parse("metadata.region").value_of(&bare), MISSING);
    }

    #[test]
    fn groups_keep_first_appearance_and_position_order() {
        let a = event(1, r#","model_version":"a""#);
        let b = event(2, r#","model_version":"b""#);
        let none = event(3, "");
        let events = [(4, &b), (5, &a), (7, &b), (9, &none), (11, &a)];
        assert_eq!(
            group(&By::Version, events),
            vec![
                ("b".to_string(), vec![4, 7]),
                ("a".to_string(), vec![5, 11]),
                (MISSING.to_string(), vec![9]),
            ]
        );
    }
}
