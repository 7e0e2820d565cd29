//! Values many models hold alike, kept once: the feature lists of a fleet of models of one
//! schema, the normal-score tables of references learnt from samples of one size.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

/// The values in use, by hash; an entry lives while some holder keeps its value.
pub struct Pool<T> {
    values: Option<HashMap<u64, Vec<Weak<T>>>>,
    /// Entries after the last sweep of values nobody holds any more.
    swept: usize,
}

impl<T> Pool<T> {
    pub const fn new() -> Self {
        Self {
            values: None,
            swept: 0,
        }
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The shared copy of `value` in `pool` (made when nobody holds one equal to it).
pub fn shared<T: Hash + Eq>(pool: &Mutex<Pool<T>>, value: T) -> Arc<T> {
    let Ok(mut guard) = pool.lock() else {
        return Arc::new(value); // a poisoned lock only costs the sharing
    };
    let pool = &mut *guard;
    let values = pool.values.get_or_insert_with(HashMap::new);
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    let same = values.entry(hasher.finish()).or_default();
    if let Some(found) = same.iter().filter_map(Weak::upgrade).find(|v| **v == value) {
        return found;
    }
    let made = Arc::new(value);
    same.retain(|v| v.strong_count() > 0);
    same.push(Arc::downgrade(&made));
    if values.len() > 2 * pool.swept.max(64) {
        values.retain(|_, same| {
            same.retain(|v| v.strong_count() > 0);
            !same.is_empty()
        });
        pool.swept = values.len();
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy_while_held() {
        static POOL: Mutex<Pool<Vec<i8>>> = Mutex::new(Pool::new());
        let a = shared(&POOL, vec![1, 2, 3]);
        let b = shared(&POOL, vec![1, 2, 3]);
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared(&POOL, vec![1, 2]);
        assert!(!Arc::ptr_eq(&a, &c));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none()); // the pool does not keep what nobody holds
        assert_eq!(*shared(&POOL, vec![1, 2, 3]), vec![1, 2, 3]);
    }
}
