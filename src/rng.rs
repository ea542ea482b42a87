//! Seeds and random streams. Every random choice in kiln comes from a stream derived from a
//! tuple such as (sweep seed, trial number) or (trial seed, epoch, purpose), never from a global
//! RNG, so results do not depend on timing, workers or interruptions.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The RNG kiln uses everywhere: fast, small, and portable across platforms and versions.
pub type Rng = Xoshiro256PlusPlus;

/// Purposes of streams, so that two uses of the same seed never share numbers.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// A trial's seed, from the sweep seed and trial number.
    TrialSeed = 1,
    /// The sampler's draws for one trial.
    Sampler = 2,
    /// Weight initialisation.
    Init = 3,
    /// Shuffling rows within an epoch.
    Shuffle = 4,
    /// Dropout masks within an epoch.
    Dropout = 5,
    /// Splitting the data set into train, val and test.
    Split = 6,
    /// A user objective's streams ([`crate::objective::Trial::rng`]).
    User = 7,
    /// The values a queued configuration leaves to chance.
    Fill = 8,
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit value derived from a seed, a purpose and further parts (trial number, epoch...).
pub fn derive(seed: u64, stream: Stream, parts: &[u64]) -> u64 {
    let mut h = splitmix(seed ^ splitmix(stream as u64));
    for &p in parts {
        h = splitmix(h ^ splitmix(p.wrapping_add(0x632B_E59B_D9B4_E019)));
    }
    h
}

/// A random stream derived from a seed, a purpose and further parts.
pub fn stream(seed: u64, purpose: Stream, parts: &[u64]) -> Rng {
    Rng::seed_from_u64(derive(seed, purpose, parts))
}

/// The seed of trial `number` of a sweep seeded `sweep_seed`.
pub fn trial_seed(sweep_seed: u64, number: u64) -> u64 {
    derive(sweep_seed, Stream::TrialSeed, &[number])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_differ_by_purpose_and_part() {
        let a = stream(7, Stream::Shuffle, &[1]).next_u64();
        assert_eq!(a, stream(7, Stream::Shuffle, &[1]).next_u64());
        assert_ne!(a, stream(7, Stream::Dropout, &[1]).next_u64());
        assert_ne!(a, stream(7, Stream::Shuffle, &[2]).next_u64());
        assert_ne!(trial_seed(0, 0), trial_seed(0, 1));
    }
}
