//! [`SimRng`]: the one random source of a run, derived from the seed.
//!
//! Why our own generator and not `rand`: the scenario must be reproducible from the seed
//! forever, across dependency upgrades. SplitMix64 is ten lines, has no state beyond one
//! `u64`, and its output is fixed by its definition.

use switchyard_core::hash;

/// SplitMix64: a small, fast, fully specified pseudo-random generator.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator for `seed`; `stream` separates independent uses of the same seed.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self {
            state: seed ^ stream.wrapping_mul(hash::SPLITMIX64_GAMMA),
        };
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let out = hash::splitmix64(self.state);
        self.state = self.state.wrapping_add(hash::SPLITMIX64_GAMMA);
        out
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = hi - lo + 1;
        if span == 0 {
            return self.next_u64();
        }
        lo + self.next_u64() % span
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.range(0, 99) < percent
    }

    /// One element of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        assert!(!items.is_empty(), "pick from an empty slice");
        let i = self.range(0, items.len() as u64 - 1) as usize;
        &items[i]
    }
}

/// FNV-1a over bytes: the digest of traces and log entries (stable, unlike `DefaultHasher`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    hash::fnv1a64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = SimRng::new(7, 1);
        let mut b = SimRng::new(7, 1);
        let mut c = SimRng::new(7, 2);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!((0..1000).all(|_| (3..=5).contains(&a.range(3, 5))));
    }
}
