//! Kafka's key partitioning: the MurmurHash2 of the key bytes, as the Java client computes it
//! (`Utils.murmur2`), so records keyed here land where every other client would put them.

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// The 32-bit MurmurHash2 of `data` (Java's `int`, as its unsigned bits).
pub fn murmur2(data: &[u8]) -> u32 {
    // Java's length is an int: keys longer than that cannot reach here (bytes of a record).
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(&first) = rest.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition (of `count`) of a record with this key: the hash's positive bits modulo the
/// partition count, as the Java client's default partitioner for keyed records.
pub fn partition_of(key: &[u8], count: usize) -> usize {
    (murmur2(key) & 0x7fff_ffff) as usize % count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_java_client() {
        // What the Java client's Utils.murmur2 gives (as Java ints) for these keys.
        let cases: [(&[u8], i32); 5] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for count in 1..20 {
            for key in [&b""[..], b"a", b"ab", b"abc", b"model-07|drift.psi|num_3"] {
                let p = partition_of(key, count);
                assert!(p < count);
                assert_eq!(p, partition_of(key, count));
            }
        }
        assert_eq!(partition_of(b"x", 0), 0);
    }
}
