//! A compact, versioned binary encoding of native state (little-endian, length-prefixed).
//!
//! Readers check every length against what is left, so truncated or hostile bytes give a
//! [`StateError`], never a panic or an unbounded allocation.

use std::fmt;

/// Native state bytes that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(pub String);

impl StateError {
    pub fn new(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

/// Builds state bytes.
#[derive(Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }
    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn f64(&mut self, value: f64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn f64s(&mut self, values: &[f64]) {
        self.u32(values.len() as u32);
        for &value in values {
            self.f64(value);
        }
    }
    pub fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn str(&mut self, value: &str) {
        self.u32(value.len() as u32);
        self.bytes.extend_from_slice(value.as_bytes());
    }
    pub fn option_i64(&mut self, value: Option<i64>) {
        self.bool(value.is_some());
        self.i64(value.unwrap_or(0));
    }
    pub fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads state bytes written by [`Writer`].
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.bytes.len() < n {
            return Err(StateError::new("native state is truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Result<bool, StateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StateError::new("native state holds a bad flag")),
        }
    }
    pub fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, StateError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    pub fn f64s(&mut self) -> Result<Vec<f64>, StateError> {
        let n = self.u32()? as usize;
        if n > self.bytes.len() / 8 {
            return Err(StateError::new("native state is truncated"));
        }
        exact(n, || self.f64())
    }
    pub fn i64(&mut self) -> Result<i64, StateError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn str(&mut self) -> Result<String, StateError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| StateError::new("native state holds bad text"))
    }
    pub fn option_i64(&mut self) -> Result<Option<i64>, StateError> {
        let present = self.bool()?;
        let value = self.i64()?;
        Ok(present.then_some(value))
    }
    /// A count of items that each take at least `min_bytes`: refused when more than could fit.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, StateError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes.max(1)) > self.bytes.len() {
            return Err(StateError::new("native state is truncated"));
        }
        Ok(n)
    }
    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), StateError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(StateError::new("native state has trailing bytes"))
        }
    }
}

/// `n` items read by `read`, in a vector of exactly that capacity: collecting an iterator of
/// results sizes it by doubling, and restored state would take more memory than live state.
/// `n` must already be bounded by the input (see [`Reader::count`]).
pub fn exact<T, E>(n: usize, mut read: impl FnMut() -> Result<T, E>) -> Result<Vec<T>, E> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(read()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_bad_bytes_are_refused() {
        let mut out = Writer::default();
        out.u8(7);
        out.bool(true);
        out.u32(42);
        out.u64(1 << 40);
        out.f64(-0.5);
        out.f64s(&[1.0, 2.0]);
        let bytes = out.finish();
        let mut input = Reader::new(&bytes);
        assert_eq!(input.u8().unwrap(), 7);
        assert!(input.bool().unwrap());
        assert_eq!(input.u32().unwrap(), 42);
        assert_eq!(input.u64().unwrap(), 1 << 40);
        assert_eq!(input.f64().unwrap(), -0.5);
        assert_eq!(input.f64s().unwrap(), vec![1.0, 2.0]);
        assert!(input.end().is_ok());
        assert!(Reader::new(&[2]).bool().is_err());
        // a length that promises more than is there
        assert!(Reader::new(&[255, 255, 255, 255]).f64s().is_err());
        assert!(Reader::new(&[1]).end().is_err());
    }
}
