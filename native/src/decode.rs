//! The native decoder of prediction events: JSON bytes to a validated [`Prediction`].
//!
//! The schema is defined once, by the pydantic `PredictionEvent` (and the codec's limits). This
//! decoder accepts an event only when that schema certainly accepts it with the same values;
//! everything else (ISO-8601 timestamps, fractional timestamps, duplicate keys, integers beyond
//! 64 bits, numbers written as strings, and every invalid event) is *deferred*: the caller
//! hands it to the Python schema, which converts it or produces the error naming the field.
//! The Python tests check that no event is accepted here that the schema refuses or reads
//! differently, on generated events and on fuzzed bytes.

use std::borrow::Cow;

/// The codec's limits (`limits` in the configuration).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_features: usize,
    pub max_string_length: usize,
    /// `limits.non_finite_features: reject` (else NaN/Infinity in a feature is a missing value).
    pub reject_non_finite: bool,
    /// Accept integers beyond 64 bits (events the schema already accepted, re-encoded).
    pub big_integers: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 65_536,
            max_features: 1_000,
            max_string_length: 1_024,
            reject_non_finite: false,
            big_integers: false,
        }
    }
}

/// A JSON scalar as the schema types it: 1, 1.0 and true stay different.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits, as its decimal digits (only with `Limits::big_integers`).
    BigInt(String),
    Float(f64),
    Str(String),
}

/// A prediction event, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub event_id: String,
    pub model_id: String,
    pub model_version: Option<String>,
    pub timestamp: i64,
    /// In the order of the event; a non-finite value is `Null` and its name in `non_finite`.
    pub features: Vec<(String, Value)>,
    pub non_finite: Vec<String>,
    pub prediction: Value,
    pub score: Option<f64>,
    pub scores: Option<Vec<(String, f64)>>,
    pub label: Option<Value>,
    pub latency_ms: Option<f64>,
}

const MIN_MS: i64 = 100_000_000_000;
const MAX_MS: i64 = 10_000_000_000_000;
const MAX_ID: usize = 256;

/// Decode one event; `None` defers it to the Python schema.
pub fn decode_prediction(data: &[u8], limits: &Limits) -> Option<Prediction> {
    if data.is_empty() || data.len() > limits.max_event_bytes {
        return None;
    }
    let mut parser = Parser {
        bytes: data,
        at: 0,
        big_integers: limits.big_integers,
    };
    let event = parser.event(limits)?;
    parser.space();
    (parser.at == data.len()).then_some(event)
}

enum Number {
    Int(i64),
    Big(String),
    Float(f64),
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    big_integers: bool,
}

#[derive(Default)]
struct Seen {
    keys: u16,
}

impl Seen {
    /// False when the key was seen before (duplicates are deferred).
    fn first(&mut self, bit: u16) -> bool {
        let new = self.keys & bit == 0;
        self.keys |= bit;
        new
    }
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// Iterate the members of an object: calls `member` with each key, the parser on its value.
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.space();
            let key = self.string()?;
            self.eat(b':')?;
            self.space();
            member(self, key)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        let start = self.at;
        // Fast path: no escapes.
        while let Some(&b) = self.bytes.get(self.at) {
            match b {
                b'"' => {
                    let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
                    self.at += 1;
                    return Some(Cow::Borrowed(text));
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let mut out: Vec<u8> = self.bytes[start..self.at].to_vec();
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return String::from_utf8(out).ok().map(Cow::Owned),
                b'\\' => {
                    let escaped = self.peek()?;
                    self.at += 1;
                    let simple = match escaped {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buffer = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    out.push(simple);
                }
                0..=0x1f => return None,
                _ => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(text, 16).ok()
    }

    /// After `\u`: one code point, surrogate pairs joined; a lone surrogate defers the event.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            if !self.literal(b"\\u") {
                return None;
            }
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            return char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00));
        }
        char::from_u32(first) // None for a lone low surrogate
    }

    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let mut float = false;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            float = true;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            float = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        if float {
            let value: f64 = text.parse().ok()?;
            value.is_finite().then_some(Number::Float(value))
        } else {
            match text.parse() {
                Ok(i) => Some(Number::Int(i)),
                Err(_) if self.big_integers => Some(Number::Big(text.to_owned())),
                Err(_) => None, // beyond 64 bits: deferred
            }
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    /// A scalar: null, true, false, a number or a string (objects and arrays defer).
    fn scalar(&mut self) -> Option<Value> {
        Some(match self.peek()? {
            b'n' if self.literal(b"null") => Value::Null,
            b't' if self.literal(b"true") => Value::Bool(true),
            b'f' if self.literal(b"false") => Value::Bool(false),
            b'"' => Value::Str(self.string()?.into_owned()),
            b'-' | b'0'..=b'9' => match self.number()? {
                Number::Int(i) => Value::Int(i),
                Number::Big(digits) => Value::BigInt(digits),
                Number::Float(f) => Value::Float(f),
            },
            _ => return None,
        })
    }

    /// A class label or number (`LabelValue`): no null, strings within the limit.
    fn label(&mut self, limit: usize) -> Option<Value> {
        match self.scalar()? {
            Value::Null => None,
            Value::Str(s) if char_len(&s) > limit => None,
            value => Some(value),
        }
    }

    fn finite_number(&mut self) -> Option<f64> {
        match self.number()? {
            Number::Int(i) => Some(i as f64),
            Number::Big(digits) => digits.parse().ok().filter(|x: &f64| x.is_finite()),
            Number::Float(f) => Some(f),
        }
    }

    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null") {
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    fn id(&mut self, limit: usize) -> Option<String> {
        let text = self.string()?;
        let n = char_len(&text);
        ((1..=MAX_ID).contains(&n) && n <= limit).then(|| text.into_owned())
    }

    fn features(
        &mut self,
        limits: &Limits,
        non_finite: &mut Vec<String>,
    ) -> Option<Vec<(String, Value)>> {
        let mut features: Vec<(String, Value)> = Vec::with_capacity(16);
        let limit = limits.max_string_length;
        self.object(|p, name| {
            if char_len(&name) > limit || features.len() >= limits.max_features {
                return None;
            }
            let value = match p.peek()? {
                b'N' if p.literal(b"NaN") => None,
                b'I' if p.literal(b"Infinity") => None,
                b'-' if p.literal(b"-Infinity") => None,
                _ => Some(p.scalar()?),
            };
            let value = match value {
                None if limits.reject_non_finite => return None,
                None => {
                    non_finite.push(name.to_string());
                    Value::Null
                }
                Some(Value::Str(s)) if char_len(&s) > limit => return None,
                Some(v) => v,
            };
            features.push((name.into_owned(), value));
            Some(())
        })?;
        if has_duplicates(features.iter().map(|(name, _)| name.as_str())) {
            return None;
        }
        Some(features)
    }

    fn scores(&mut self) -> Option<Vec<(String, f64)>> {
        let mut scores = Vec::new();
        self.object(|p, name| {
            let value = p.finite_number()?;
            scores.push((name.into_owned(), value));
            Some(())
        })?;
        (!has_duplicates(scores.iter().map(|(name, _)| name.as_str()))).then_some(scores)
    }

    fn metadata(&mut self) -> Option<()> {
        let mut names = Vec::new();
        self.object(|p, name| {
            p.scalar()?;
            names.push(name);
            Some(())
        })?;
        (!has_duplicates(names.iter().map(|n| n.as_ref()))).then_some(())
    }

    fn event(&mut self, limits: &Limits) -> Option<Prediction> {
        let limit = limits.max_string_length;
        let mut seen = Seen::default();
        let (mut event_id, mut model_id, mut timestamp, mut features, mut prediction) =
            (None, None, None, None, None);
        let mut model_version = None;
        let (mut score, mut scores, mut label, mut latency) = (None, None, None, None);
        let mut non_finite = Vec::new();
        self.object(|p, key| {
            match key.as_ref() {
                "schema_version" if seen.first(1) => match p.number()? {
                    Number::Int(1) => {}
                    _ => return None,
                },
                "event_id" if seen.first(2) => event_id = Some(p.id(limit)?),
                "model_id" if seen.first(4) => model_id = Some(p.id(limit)?),
                "model_version" if seen.first(8) => model_version = p.optional(|p| p.id(limit))?,
                "timestamp" if seen.first(16) => match p.number()? {
                    Number::Int(t) if (MIN_MS..MAX_MS).contains(&t) => timestamp = Some(t),
                    _ => return None,
                },
                "features" if seen.first(32) => {
                    features = Some(p.features(limits, &mut non_finite)?);
                }
                "prediction" if seen.first(64) => prediction = Some(p.label(limit)?),
                "score" if seen.first(128) => score = p.optional(Parser::finite_number)?,
                "scores" if seen.first(256) => scores = p.optional(Parser::scores)?,
                "label" if seen.first(512) => label = p.optional(|p| p.label(limit))?,
                "latency_ms" if seen.first(1024) => {
                    latency = p.optional(Parser::finite_number)?;
                    if latency.is_some_and(|l| l < 0.0) {
                        return None;
                    }
                }
                "metadata" if seen.first(2048) => {
                    p.optional(Parser::metadata)?;
                }
                _ => return None, // unknown or repeated: the schema says what to do
            }
            Some(())
        })?;
        if score.is_some() && scores.is_some() {
            return None;
        }
        Some(Prediction {
            event_id: event_id?,
            model_id: model_id?,
            model_version,
            timestamp: timestamp?,
            features: features?,
            non_finite,
            prediction: prediction?,
            score,
            scores,
            label,
            latency_ms: latency,
        })
    }
}

/// Whether any name repeats: names are hashed (FNV-1a) and sorted by (hash, name), so equal
/// names end up side by side; a dozen features cost a few dozen nanoseconds.
fn has_duplicates<'s>(names: impl Iterator<Item = &'s str>) -> bool {
    let mut hashed: Vec<(u64, &str)> = names
        .map(|name| {
            let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (hash, name)
        })
        .collect();
    hashed.sort_unstable();
    hashed.windows(2).any(|pair| pair[0] == pair[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = r#"{"event_id":"e-1","model_id":"fraud","timestamp":1795800000000,
        "features":{"amount":12.5,"country":"FR","new":true,"n":3,"gone":null},
        "prediction":1,"score":0.8,"latency_ms":3,"metadata":{"h":"a"}}"#;

    fn decode(text: &str) -> Option<Prediction> {
        decode_prediction(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn plain_event_is_decoded_with_its_types() {
        let event = decode(PLAIN).unwrap();
        assert_eq!(event.event_id, "e-1");
        assert_eq!(event.timestamp, 1_795_800_000_000);
        assert_eq!(
            event.features,
            vec![
                ("amount".into(), Value::Float(12.5)),
                ("country".into(), Value::Str("FR".into())),
                ("new".into(), Value::Bool(true)),
                ("n".into(), Value::Int(3)),
                ("gone".into(), Value::Null),
            ]
        );
        assert_eq!(event.prediction, Value::Int(1));
        assert_eq!((event.score, event.latency_ms), (Some(0.8), Some(3.0)));
    }

    #[test]
    fn escapes_and_non_finite_features() {
        let text = r#"{"event_id":"\u00e9\ud83d\ude00","model_id":"m","timestamp":100000000000,
            "features":{"x":NaN,"y":-Infinity},"prediction":"a\nb"}"#;
        let event = decode(text).unwrap();
        assert_eq!(event.event_id, "\u{e9}\u{1f600}");
        assert_eq!(event.non_finite, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(event.prediction, Value::Str("a\nb".into()));
        let strict = Limits {
            reject_non_finite: true,
            ..Limits::default()
        };
        assert!(decode_prediction(text.as_bytes(), &strict).is_none());
    }

    #[test]
    fn anything_unusual_is_deferred() {
        let base = r#""event_id":"e","model_id":"m","features":{},"prediction":1"#;
        for bad in [
            format!(r#"{{{base},"timestamp":"2026-11-27T17:00:00Z"}}"#),
            format!(r#"{{{base},"timestamp":1795800000000.5}}"#),
            format!(r#"{{{base},"timestamp":1700000000}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"extra":1}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"event_id":"again"}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"score":0.5,"scores":{{"a":1}}}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"latency_ms":-1}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"score":NaN}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"schema_version":2}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"label":null,"label":1}}"#),
            format!(r#"{{{base},"timestamp":1795800000000}} trailing"#),
            format!(r#"{{{base},"timestamp":1795800000000,"model_version":""}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"score":1e999}}"#),
            format!(r#"{{{base},"timestamp":1795800000000,"score":99999999999999999999}}"#),
            r#"{"event_id":"\ud800","model_id":"m","features":{},"prediction":1,"timestamp":1795800000000}"#.into(),
            r#"{"event_id":"e","model_id":"m","features":{"a":1,"a":2},"prediction":1,"timestamp":1795800000000}"#.into(),
            r#"{"event_id":"e","model_id":"m","features":{"a":[1]},"prediction":1,"timestamp":1795800000000}"#.into(),
            r#"{"event_id":"e","model_id":"m","features":{},"prediction":null,"timestamp":1795800000000}"#.into(),
            "[1]".into(),
            "{".into(),
            String::new(),
        ] {
            assert!(decode(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn limits_are_applied() {
        let tight = Limits {
            max_string_length: 2,
            ..Limits::default()
        };
        assert!(decode_prediction(PLAIN.as_bytes(), &tight).is_none());
        let few = Limits {
            max_features: 4,
            ..Limits::default()
        };
        assert!(decode_prediction(PLAIN.as_bytes(), &few).is_none());
        let small = Limits {
            max_event_bytes: 100,
            ..Limits::default()
        };
        assert!(decode_prediction(PLAIN.as_bytes(), &small).is_none());
    }

    #[test]
    fn truncated_input_never_panics() {
        for end in 0..PLAIN.len() {
            let _ = decode_prediction(&PLAIN.as_bytes()[..end], &Limits::default());
        }
    }
}
