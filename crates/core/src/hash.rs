//! The one home of the workspace's small, stable, non-cryptographic hashes: FNV-1a 64 (state
//! digests, seeds from names) and SplitMix64 (reproducible jitter and seeded streams).
//!
//! Why hand-written and not `std`'s `DefaultHasher`: its output may change between Rust
//! releases, and these values must agree across replicas, runs and builds (a state digest, a
//! breaker's jittered open duration, a simulation replayed from its seed).

/// FNV-1a 64's offset basis.
const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64's prime.
const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// SplitMix64's Weyl increment (the golden ratio in 64 bits).
pub const SPLITMIX64_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.update(bytes);
    h.finish()
}

/// An FNV-1a 64 hash fed in pieces; also an [`std::io::Write`], so a serializer can write
/// straight into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    /// The hash of nothing.
    pub fn new() -> Self {
        Self(FNV1A64_OFFSET)
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV1A64_PRIME);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::io::Write for Fnv1a64 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SplitMix64's finalizer: a bijection on `u64` that mixes every input bit into the output.
pub fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One SplitMix64 step from state `x`: the output for the state `x + GAMMA`.
pub fn splitmix64(x: u64) -> u64 {
    splitmix64_mix(x.wrapping_add(SPLITMIX64_GAMMA))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Reference values of the published algorithms.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // SplitMix64 seeded with 0: its first output.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        let mut pieces = Fnv1a64::new();
        pieces.update(b"foo");
        pieces.update(b"bar");
        assert_eq!(pieces.finish(), fnv1a64(b"foobar"));
    }
}
