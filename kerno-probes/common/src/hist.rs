//! Histogram layout: log-linear buckets, as HDR histograms use.
//!
//! Values below `2^SUB_BITS` get one bucket each; above that, each power of two is split
//! into `2^SUB_BITS` equal sub-buckets, so a bucket is at most 1/16 (6.25%) of its value
//! wide and a percentile read at the bucket's midpoint is within ~3% of the exact value.

/// Linear sub-buckets per power of two, as a bit count.
pub const SUB_BITS: u32 = 4;
/// Sub-buckets per power of two.
pub const SUB: u64 = 1 << SUB_BITS;
/// The largest exponent with its own buckets: values at or above `2^(MAX_EXP + 1)`
/// (about 34 s when the unit is nanoseconds) share the last bucket.
pub const MAX_EXP: u32 = 34;
/// Number of buckets.
pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) as usize + 1) * SUB as usize;

/// The bucket a value falls in. Branch-light and loop-free, so the eBPF verifier
/// accepts it and it costs a few instructions on the hot path.
#[inline(always)]
pub fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let mut x = v;
    let mut e: u32 = 0;
    if x >= 1 << 32 {
        e += 32;
        x >>= 32;
    }
    if x >= 1 << 16 {
        e += 16;
        x >>= 16;
    }
    if x >= 1 << 8 {
        e += 8;
        x >>= 8;
    }
    if x >= 1 << 4 {
        e += 4;
        x >>= 4;
    }
    if x >= 1 << 2 {
        e += 2;
        x >>= 2;
    }
    if x >= 1 << 1 {
        e += 1;
    }
    if e > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((v >> (e - SUB_BITS)) & (SUB - 1)) as usize;
    ((e - SUB_BITS + 1) as usize) * SUB as usize + sub
}

/// The half-open value range `[lo, hi)` of a bucket. The last bucket's `hi` is the
/// upper end of its nominal range; larger values were clamped into it.
#[inline]
pub fn bounds(i: usize) -> (u64, u64) {
    if i < SUB as usize {
        return (i as u64, i as u64 + 1);
    }
    let e = (i as u64 / SUB) as u32 + SUB_BITS - 1;
    let sub = i as u64 % SUB;
    let width = 1u64 << (e - SUB_BITS);
    let lo = (SUB + sub) << (e - SUB_BITS);
    (lo, lo + width)
}

/// A histogram as stored in a map value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Hist {
    /// Sample counts per bucket (see [`crate::hist`]).
    pub buckets: [u64; BUCKETS],
}

#[cfg(feature = "user")]
pod!(Hist);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_values() {
        let mut prev_hi = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds(i);
            assert_eq!(
                lo,
                prev_hi,
                "bucket {i} starts where {} ended",
                i.wrapping_sub(1)
            );
            assert!(hi > lo);
            assert_eq!(bucket(lo), i);
            assert_eq!(bucket(hi - 1), i);
            prev_hi = hi;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(BUCKETS, 512);
    }

    #[test]
    fn bucket_width_is_at_most_a_sixteenth() {
        for i in SUB as usize..BUCKETS {
            let (lo, hi) = bounds(i);
            assert!((hi - lo) * 16 <= lo, "bucket {i}: [{lo}, {hi})");
        }
    }
}
