//! A growable buffer whose memory comes straight from the operating system (an anonymous
//! `mmap`), for the warm-up sample: the columns of a model's first events, held for a moment
//! and freed all at once when its reference is learnt.
//!
//! From the allocator's heap, those columns interleave with the state that outlives them (the
//! references, detectors and windows made at the end of each model's warm-up); a process that
//! warmed up many models at once then kept most of their peak as freed but resident memory.
//! A mapping is handed back whole when dropped. Small buffers, and platforms without `mmap`,
//! use the heap as a `Vec` does.

use std::alloc::{self, Layout};
use std::fmt;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

/// Buffers of at least this many bytes are mapped.
const MAP_AT: usize = 4_096;

/// A `Vec`-like buffer of `T` (push, slice access), mapped when large.
pub struct Mapped<T> {
    ptr: NonNull<T>,
    len: usize,
    capacity: usize,
    mapped: bool,
}

// The buffer owns its elements as a `Vec` does.
unsafe impl<T: Send> Send for Mapped<T> {}
unsafe impl<T: Sync> Sync for Mapped<T> {}

impl<T> Mapped<T> {
    /// An empty buffer with room for `capacity` elements.
    pub fn with_capacity(capacity: usize) -> Self {
        let size = mem::size_of::<T>();
        if size == 0 || capacity == 0 {
            return Self {
                ptr: NonNull::dangling(),
                len: 0,
                capacity: if size == 0 { usize::MAX } else { 0 },
                mapped: false,
            };
        }
        let layout = Layout::array::<T>(capacity).expect("a warm-up buffer fits in memory");
        if layout.size() >= MAP_AT {
            if let Some(ptr) = map(layout.size()) {
                return Self {
                    ptr: ptr.cast(),
                    len: 0,
                    capacity,
                    mapped: true,
                };
            }
        }
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        Self {
            ptr,
            len: 0,
            capacity,
            mapped: false,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Append `value`, moving to a buffer twice the size when full.
    pub fn push(&mut self, value: T) {
        if self.len == self.capacity {
            let mut bigger = Self::with_capacity((self.capacity * 2).max(4));
            // SAFETY: both buffers hold at least `len` slots and do not overlap; the elements
            // move (the old buffer's length is set to 0, so they are not dropped twice).
            unsafe { ptr::copy_nonoverlapping(self.ptr.as_ptr(), bigger.ptr.as_ptr(), self.len) };
            bigger.len = mem::replace(&mut self.len, 0);
            *self = bigger;
        }
        // SAFETY: `len < capacity`, so the slot is inside the buffer and unused.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }
}

impl<T> Drop for Mapped<T> {
    fn drop(&mut self) {
        // SAFETY: the first `len` slots hold initialised elements, dropped once here; the
        // memory is released the way it was obtained.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len));
            let size = mem::size_of::<T>();
            if size == 0 || self.capacity == 0 {
                return;
            }
            let layout = Layout::array::<T>(self.capacity).expect("allocated with this layout");
            if self.mapped {
                unmap(self.ptr.cast(), layout.size());
            } else {
                alloc::dealloc(self.ptr.as_ptr().cast(), layout);
            }
        }
    }
}

impl<T> Deref for Mapped<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for Mapped<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: the first `len` slots are initialised and uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Clone> Clone for Mapped<T> {
    fn clone(&self) -> Self {
        let mut copy = Self::with_capacity(self.capacity);
        for value in self.iter() {
            copy.push(value.clone());
        }
        copy
    }
}

impl<T: fmt::Debug> fmt::Debug for Mapped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Mapped<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<'a, T> IntoIterator for &'a Mapped<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> FromIterator<T> for Mapped<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut out = Self::with_capacity(iter.size_hint().0);
        for value in iter {
            out.push(value);
        }
        out
    }
}

#[cfg(unix)]
fn map(size: usize) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping, no file and no fixed address.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(raw.cast())
    }
}

#[cfg(unix)]
unsafe fn unmap(ptr: NonNull<u8>, size: usize) {
    // SAFETY: `ptr` and `size` are those of a mapping made by `map`; the caller drops it once.
    unsafe { libc::munmap(ptr.as_ptr().cast(), size) };
}

#[cfg(not(unix))]
fn map(_size: usize) -> Option<NonNull<u8>> {
    None
}

#[cfg(not(unix))]
unsafe fn unmap(_ptr: NonNull<u8>, _size: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_mapped_and_small_ones_are_not() {
        let mut numbers: Mapped<f64> = Mapped::with_capacity(1_000);
        assert!(numbers.mapped);
        let small: Mapped<f64> = Mapped::with_capacity(8);
        assert!(!small.mapped);
        for i in 0..1_500 {
            numbers.push(f64::from(i)); // grows past its capacity
        }
        assert_eq!(numbers.len(), 1_500);
        assert_eq!(numbers[1_499], 1_499.0);
        assert!(numbers.capacity() >= 1_500);
        numbers[0] = -1.0;
        assert_eq!(
            numbers.iter().take(2).copied().collect::<Vec<_>>(),
            [-1.0, 1.0]
        );
    }

    #[test]
    fn elements_are_dropped_once_and_clones_are_equal() {
        let mut words: Mapped<String> = Mapped::with_capacity(300);
        for i in 0..700 {
            words.push(format!("w{i}"));
        }
        let copy = words.clone();
        assert_eq!(copy, words);
        assert_eq!(copy[699], "w699");
        let empty: Mapped<String> = Mapped::with_capacity(0);
        assert!(empty.is_empty());
        let collected: Mapped<u8> = (0..10).collect();
        assert_eq!(&*collected, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(
            format!("{collected:?}"),
            format!("{:?}", (0..10).collect::<Vec<u8>>())
        );
    }
}
