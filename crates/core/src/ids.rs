//! ULID session and sub-session ids, from injected entropy.

use crate::Millis;
use ulid::Ulid;

/// A source of random bits. The shell seeds one from the operating system; tests use a
/// fixed seed so that every id is reproducible.
pub trait Entropy {
    fn next_u64(&mut self) -> u64;
}

/// A small deterministic generator (SplitMix64) for tests and for seeding from one word.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl Entropy for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// ULIDs that are monotonic within a millisecond: a second id in the same millisecond is the
/// previous one plus one, so ids sort in creation order.
#[derive(Debug)]
pub struct IdGen<E> {
    entropy: E,
    last: Ulid,
}

impl<E: Entropy> IdGen<E> {
    pub fn new(entropy: E) -> Self {
        Self {
            entropy,
            last: Ulid::nil(),
        }
    }

    pub fn next(&mut self, now: Millis) -> Ulid {
        let id = if now.0 <= self.last.timestamp_ms() {
            // Same (or an earlier, if the wall clock stepped back) millisecond: stay monotonic.
            self.last
                .increment()
                .unwrap_or_else(|_| self.fresh(now.0 + 1))
        } else {
            self.fresh(now.0)
        };
        self.last = id;
        id
    }

    fn fresh(&mut self, ms: u64) -> Ulid {
        let hi = u128::from(self.entropy.next_u64() & 0xFFFF);
        let lo = u128::from(self.entropy.next_u64());
        // Keep the top random bit clear so that increments within a millisecond cannot
        // overflow in practice.
        Ulid::from_parts(ms, ((hi << 64) | lo) & !(1u128 << 79))
    }

    /// A member's resume key: 128 bits of the entropy, unguessable when the shell's entropy
    /// is (the server reads it from the operating system).
    pub fn resume_key(&mut self) -> rtcroom_protocol::ResumeKey {
        let hi = self.entropy.next_u64();
        let lo = self.entropy.next_u64();
        rtcroom_protocol::ResumeKey::from_bits(hi, lo)
    }

    /// A random number below `bound` (for server-assigned uids).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.entropy.next_u64() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_monotonic_within_a_millisecond() {
        let mut g = IdGen::new(SplitMix64(7));
        let a = g.next(Millis(1_000));
        let b = g.next(Millis(1_000));
        let c = g.next(Millis(999));
        let d = g.next(Millis(2_000));
        assert!(a < b && b < c && c < d);
        assert_eq!(a.timestamp_ms(), 1_000);
        assert_eq!(d.timestamp_ms(), 2_000);
        assert_eq!(a.to_string().len(), 26);
    }
}
