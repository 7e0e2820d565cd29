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
use std::sync::Arc;

/// A feature name: shared by the events of a batch that list the same names.
pub type Name = Arc<str>;

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

impl Limits {
    /// The configuration's limits (`limits.*`), for events not yet checked by the schema.
    pub fn configured(
        max_event_bytes: usize,
        max_features: usize,
        max_string_length: usize,
        reject_non_finite: bool,
    ) -> Self {
        Self {
            max_event_bytes,
            max_features,
            max_string_length,
            reject_non_finite,
            big_integers: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::configured(65_536, 1_000, 1_024, false)
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
    pub features: Vec<(Name, Value)>,
    pub non_finite: Vec<String>,
    pub prediction: Value,
    pub score: Option<f64>,
    pub scores: Option<Vec<(String, f64)>>,
    pub label: Option<Value>,
    pub latency_ms: Option<f64>,
    /// `metadata` as sent (empty without it): segments may be keyed by it.
    pub metadata: Vec<(String, Value)>,
}

/// 10^0 ..= 10^15, all exact in an f64 (fractions of more digits take the standard parser).
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

const MIN_MS: i64 = 100_000_000_000;
const MAX_MS: i64 = 10_000_000_000_000;
const MAX_ID: usize = 256;

/// Decode one event; `None` defers it to the Python schema.
pub fn decode_prediction(data: &[u8], limits: &Limits) -> Option<Prediction> {
    Decoder::default().decode(data, limits)
}

/// Decodes the events of a batch, reusing the feature names of the event before (events of
/// one model list the same names, usually in the same order) and its scratch space.
#[derive(Default)]
pub struct Decoder {
    /// The last event's feature names, in order, with their hashes.
    names: Vec<(Name, u64)>,
    hashes: Vec<u64>,
}

impl Decoder {
    /// Decode one event; `None` defers it to the Python schema.
    pub fn decode(&mut self, data: &[u8], limits: &Limits) -> Option<Prediction> {
        if data.is_empty() || data.len() > limits.max_event_bytes {
            return None;
        }
        // JSON is UTF-8: checked once here, so strings and numbers are sliced without a check.
        let text = std::str::from_utf8(data).ok()?;
        let mut parser = Parser {
            text,
            bytes: data,
            at: 0,
            big_integers: limits.big_integers,
            decoder: self,
        };
        let event = parser.event(limits)?;
        parser.space();
        (parser.at == data.len()).then_some(event)
    }
}

enum Number {
    Int(i64),
    Big(String),
    Float(f64),
}

struct Parser<'a, 'd> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    big_integers: bool,
    decoder: &'d mut Decoder,
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

/// Whether `text` has at most `limit` characters (counted only when its bytes are more).
fn within(text: &str, limit: usize) -> bool {
    text.len() <= limit || char_len(text) <= limit
}

impl<'a> Parser<'a, '_> {
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
        let end = start
            + self.bytes[start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.at = end;
        match self.bytes[end] {
            b'"' => {
                self.at += 1;
                return Some(Cow::Borrowed(self.text.get(start..end)?));
            }
            b'\\' => {}
            _ => return None,
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
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        // The digits' value as they are scanned: plain decimals (the usual case) need no
        // second pass; anything longer or with an exponent goes to the standard parser.
        let mut mantissa = 0_u64;
        let int_start = self.at;
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => mantissa = self.digits(0),
            _ => return None,
        }
        let mut digits = self.at - int_start;
        let mut fraction = 0;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            float = true;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            let fraction_start = self.at;
            mantissa = self.digits(mantissa);
            fraction = self.at - fraction_start;
            digits += fraction;
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            float = true;
            exponent = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits(0);
        }
        // Up to 15 digits, the mantissa is below 2^53 and exact, and so is 10^fraction: one
        // IEEE division is then the correctly rounded value, the same as the standard
        // parser's (Clinger's fast path).
        if !exponent && digits <= 15 {
            if !float {
                let value = mantissa as i64;
                return Some(Number::Int(if negative { -value } else { value }));
            }
            let value = mantissa as f64 / POWERS_OF_TEN[fraction];
            return Some(Number::Float(if negative { -value } else { value }));
        }
        let text = self.text.get(start..self.at)?;
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

    /// Skip a run of digits, folding them into `value` (wrapping: only read up to 15 digits).
    fn digits(&mut self, mut value: u64) -> u64 {
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit - b'0'));
            self.at += 1;
        }
        value
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
            Value::Str(s) if !within(&s, limit) => None,
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
        (!text.is_empty() && within(&text, MAX_ID.min(limit))).then(|| text.into_owned())
    }

    fn features(
        &mut self,
        limits: &Limits,
        non_finite: &mut Vec<String>,
    ) -> Option<Vec<(Name, Value)>> {
        let mut features: Vec<(Name, Value)> = Vec::with_capacity(self.decoder.names.len());
        let mut hashes = std::mem::take(&mut self.decoder.hashes);
        hashes.clear();
        let limit = limits.max_string_length;
        let read = self.object(|p, name| {
            if features.len() >= limits.max_features || !within(&name, limit) {
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
                Some(Value::Str(s)) if !within(&s, limit) => return None,
                Some(v) => v,
            };
            let slot = features.len();
            let (shared, hash) = match p.decoder.names.get(slot) {
                Some((known, hash)) if **known == *name => (known.clone(), *hash),
                _ => {
                    let fresh: Name = Arc::from(name.as_ref());
                    let hash = fnv1a(&fresh);
                    p.decoder.names.truncate(slot);
                    p.decoder.names.push((fresh.clone(), hash));
                    (fresh, hash)
                }
            };
            hashes.push(hash);
            features.push((shared, value));
            Some(())
        });
        let unique = read.is_some() && !repeats(&hashes, |i| &*features[i].0);
        self.decoder.hashes = hashes;
        unique.then_some(features)
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

    fn metadata(&mut self) -> Option<Vec<(String, Value)>> {
        let mut entries = Vec::new();
        self.object(|p, name| {
            let value = p.scalar()?;
            entries.push((name.into_owned(), value));
            Some(())
        })?;
        (!has_duplicates(entries.iter().map(|(n, _)| n.as_str()))).then_some(entries)
    }

    fn event(&mut self, limits: &Limits) -> Option<Prediction> {
        let limit = limits.max_string_length;
        let mut seen = Seen::default();
        let (mut event_id, mut model_id, mut timestamp, mut features, mut prediction) =
            (None, None, None, None, None);
        let mut model_version = None;
        let (mut score, mut scores, mut label, mut latency) = (None, None, None, None);
        let mut non_finite = Vec::new();
        let mut metadata = None;
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
                    metadata = p.optional(Parser::metadata)?;
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
            metadata: metadata.unwrap_or_default(),
        })
    }
}

fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether any name repeats, given each name's hash: pairs are compared by hash, and by name
/// only when the hashes are equal. Quadratic in hashes, which for up to the few dozen features
/// events carry beats sorting; beyond that, sorted.
fn repeats<'s>(hashes: &[u64], name: impl Fn(usize) -> &'s str) -> bool {
    if hashes.len() <= 48 {
        (0..hashes.len())
            .any(|i| (i + 1..hashes.len()).any(|j| hashes[i] == hashes[j] && name(i) == name(j)))
    } else {
        let mut hashed: Vec<(u64, &str)> =
            (0..hashes.len()).map(|i| (hashes[i], name(i))).collect();
        hashed.sort_unstable();
        hashed.windows(2).any(|pair| pair[0] == pair[1])
    }
}

/// Whether any name repeats.
fn has_duplicates<'s>(names: impl Iterator<Item = &'s str>) -> bool {
    let names: Vec<&str> = names.collect();
    let hashes: Vec<u64> = names.iter().map(|n| fnv1a(n)).collect();
    repeats(&hashes, |i| names[i])
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
    fn plain_decimals_read_as_the_standard_parser_reads_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let digits = (next() % 16 + 1) as usize;
            let point = (next() % (digits as u64 + 1)) as usize;
            let text: String = (0..digits)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let text = match point {
                0 => text,
                p => format!("{}.{}", &text[..p], &text[p..]),
            };
            let text = text.trim_start_matches('0');
            let text = if text.is_empty() || text.starts_with('.') {
                format!("0{text}")
            } else {
                text.to_string()
            };
            if text.ends_with('.') {
                continue;
            }
            for sign in ["", "-"] {
                let written = format!("{sign}{text}");
                let mut decoder = Decoder::default();
                let mut parser = Parser {
                    text: &written,
                    bytes: written.as_bytes(),
                    at: 0,
                    big_integers: false,
                    decoder: &mut decoder,
                };
                match parser.number() {
                    Some(Number::Int(i)) => assert_eq!(Ok(i), written.parse::<i64>(), "{written}"),
                    Some(Number::Float(f)) => {
                        let expected: f64 = written.parse().unwrap();
                        assert_eq!(f.to_bits(), expected.to_bits(), "{written}");
                    }
                    _ => panic!("{written} not read"),
                }
            }
        }
    }

    #[test]
    fn truncated_input_never_panics() {
        for end in 0..PLAIN.len() {
            let _ = decode_prediction(&PLAIN.as_bytes()[..end], &Limits::default());
        }
    }
}
