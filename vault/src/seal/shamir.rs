//! Shamir secret sharing of the root key over GF(2^8).
//!
//! The arithmetic is `vsss-rs` 6 (`Gf256`): maintained, audited (its
//! changelog cites the audit findings it fixed: coefficients drawn
//! uniformly including zero, zero and duplicate x-coordinates rejected), and
//! constant-time — no log/exp lookup tables indexed by secret bytes, unlike
//! `sharks`/`blahaj`. We use it without default features (no big integers,
//! no curves): it adds `ff`, `subtle`, `generic-array`, `hybrid-array` and
//! `rand_core` 0.10. Its random coefficients come from `ring`'s system RNG
//! through [`SystemRng`].
//!
//! vsss-rs needs a threshold of at least 2. A threshold of 1 is Shamir with
//! a degree-0 polynomial — every share's y is the key itself — and is
//! written out here, since there is no arithmetic to get wrong.
//!
//! A share is `x u8 (1..=255) | y [32]`: the x-coordinate and the 32
//! polynomial values, one per key byte.

use std::convert::Infallible;

use ring::rand::{SecureRandom, SystemRandom};
use vsss_rs::Gf256;
use zeroize::{Zeroize, Zeroizing};

use super::SealError;
use crate::barrier::{KEY_LEN, RootKey};

/// Length of an encoded share.
pub const SHARE_LEN: usize = 1 + KEY_LEN;

/// One unseal share: give it to one operator, never store it in the vault.
///
/// Zeroized on drop; `Debug` prints only its index.
pub struct UnsealShare(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for UnsealShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnsealShare(#{}, [redacted])", self.index())
    }
}

impl UnsealShare {
    /// A share from its [`SHARE_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != SHARE_LEN {
            return Err(SealError::MalformedShare {
                what: "wrong length",
            });
        }
        if bytes.first() == Some(&0) {
            // x = 0 is where the secret lives (f(0)); no share has it.
            return Err(SealError::MalformedShare { what: "index 0" });
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// A share from its hex encoding (what `init` hands out).
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| SealError::MalformedShare { what: "not hex" })?,
        );
        Self::from_bytes(&bytes)
    }

    /// The share's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The share's hex encoding, to hand to an operator.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&*self.0))
    }

    /// The share's x-coordinate, 1 to 255 (not secret).
    pub fn index(&self) -> u8 {
        self.0.first().copied().unwrap_or(0)
    }
}

/// `ring`'s system RNG as a `rand_core` 0.10 generator. `rand_core`'s
/// `CryptoRng` is infallible; a failure is remembered and reported after
/// the split, whose output is then discarded.
struct SystemRng {
    rng: SystemRandom,
    failed: bool,
}

impl SystemRng {
    fn fill(&mut self, dst: &mut [u8]) {
        if self.rng.fill(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
    }
}

impl rand_core::TryRng for SystemRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SystemRng {}

/// Checks 1 ≤ threshold ≤ shares ≤ 255.
pub(crate) fn check_parameters(threshold: u8, shares: u8) -> Result<(), SealError> {
    if threshold == 0 || threshold > shares {
        return Err(SealError::InvalidShareParameters { threshold, shares });
    }
    Ok(())
}

/// Splits `root` into `shares` shares, any `threshold` of which recover it.
pub(crate) fn split(
    root: &RootKey,
    threshold: u8,
    shares: u8,
) -> Result<Vec<UnsealShare>, SealError> {
    check_parameters(threshold, shares)?;
    if threshold == 1 {
        return Ok((1..=shares)
            .map(|x| {
                let mut share = Zeroizing::new(Vec::with_capacity(SHARE_LEN));
                share.push(x);
                share.extend_from_slice(root.bytes());
                UnsealShare(share)
            })
            .collect());
    }
    let mut rng = SystemRng {
        rng: SystemRandom::new(),
        failed: false,
    };
    let split = Gf256::split_bytes(
        usize::from(threshold),
        usize::from(shares),
        root.bytes(),
        &mut rng,
    );
    let raw = split.map_err(|_| SealError::InvalidShareParameters { threshold, shares })?;
    let out: Vec<UnsealShare> = raw
        .into_iter()
        .map(|s| UnsealShare(Zeroizing::new(s)))
        .collect();
    if rng.failed {
        return Err(SealError::Random);
    }
    // vsss-rs numbers shares 1..=n; check rather than assume.
    let well_formed = out.len() == usize::from(shares)
        && out
            .iter()
            .zip(1..=shares)
            .all(|(s, x)| s.0.len() == SHARE_LEN && s.index() == x);
    if !well_formed {
        return Err(SealError::Random);
    }
    Ok(out)
}

/// Recombines `threshold` or more distinct shares into a candidate root
/// key. Whether it is the right one only the keyring's AEAD can tell.
pub(crate) fn combine(shares: &[UnsealShare], threshold: u8) -> Result<RootKey, SealError> {
    if shares.len() < usize::from(threshold) || shares.is_empty() {
        return Err(SealError::WrongShares);
    }
    if threshold == 1 {
        // Degree 0: any share's y is the key; all given must agree, or
        // they are not one set.
        let first = shares.first().ok_or(SealError::WrongShares)?;
        let y = first.0.get(1..).ok_or(SealError::WrongShares)?;
        let agree = shares.iter().all(|s| {
            s.0.get(1..).is_some_and(|other| {
                aws_lc_rs::constant_time::verify_slices_are_equal(y, other).is_ok()
            })
        });
        if !agree {
            return Err(SealError::WrongShares);
        }
        return RootKey::from_bytes(y).ok_or(SealError::WrongShares);
    }
    let mut raw: Vec<Vec<u8>> = shares.iter().map(|s| s.0.to_vec()).collect();
    let combined = Gf256::combine_bytes(&raw);
    raw.iter_mut().for_each(Zeroize::zeroize);
    let secret = Zeroizing::new(combined.map_err(|_| SealError::WrongShares)?);
    RootKey::from_bytes(&secret).ok_or(SealError::WrongShares)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RootKey {
        RootKey::from_bytes(&[0x5a; KEY_LEN]).unwrap()
    }

    #[test]
    fn any_threshold_subset_recovers_and_fewer_do_not() {
        for (t, n) in [(1u8, 1u8), (1, 3), (2, 2), (2, 3), (3, 5), (5, 5)] {
            let shares = split(&key(), t, n).unwrap();
            assert_eq!(shares.len(), usize::from(n));
            for s in &shares {
                assert_eq!(s.as_bytes().len(), SHARE_LEN);
            }
            // The last t shares.
            let start = usize::from(n - t);
            let subset: Vec<UnsealShare> = shares[start..]
                .iter()
                .map(|s| UnsealShare::from_bytes(s.as_bytes()).unwrap())
                .collect();
            assert_eq!(combine(&subset, t).unwrap().bytes(), &[0x5a; KEY_LEN]);
            if t > 1 {
                assert!(matches!(
                    combine(&subset[1..], t),
                    Err(SealError::WrongShares)
                ));
            }
        }
    }

    #[test]
    fn split_is_randomised_and_handles_255_shares() {
        let a = split(&key(), 3, 255).unwrap();
        let b = split(&key(), 3, 255).unwrap();
        assert_eq!(a.len(), 255);
        assert_eq!(a[254].index(), 255);
        assert_ne!(a[0].as_bytes(), b[0].as_bytes());
        let subset: Vec<UnsealShare> = [&a[0], &a[100], &a[254]]
            .iter()
            .map(|s| UnsealShare::from_bytes(s.as_bytes()).unwrap())
            .collect();
        assert_eq!(combine(&subset, 3).unwrap().bytes(), &[0x5a; KEY_LEN]);
    }

    #[test]
    fn bad_parameters_and_shares_are_refused() {
        for (t, n) in [(0u8, 3u8), (4, 3), (0, 0)] {
            assert!(matches!(
                split(&key(), t, n),
                Err(SealError::InvalidShareParameters { threshold, shares }) if threshold == t && shares == n
            ));
        }
        assert!(matches!(
            UnsealShare::from_bytes(&[1; SHARE_LEN - 1]),
            Err(SealError::MalformedShare {
                what: "wrong length"
            })
        ));
        assert!(matches!(
            UnsealShare::from_bytes(&[0; SHARE_LEN]),
            Err(SealError::MalformedShare { what: "index 0" })
        ));
        assert!(matches!(
            UnsealShare::from_hex("zz"),
            Err(SealError::MalformedShare { what: "not hex" })
        ));
        let share = split(&key(), 2, 2).unwrap().remove(0);
        let back = UnsealShare::from_hex(&share.to_hex()).unwrap();
        assert_eq!(back.as_bytes(), share.as_bytes());
        assert_eq!(format!("{share:?}"), "UnsealShare(#1, [redacted])");
        // Degree 0: disagreeing shares are not one set.
        let mut one = vec![1u8];
        one.extend_from_slice(&[1; KEY_LEN]);
        let mut two = vec![2u8];
        two.extend_from_slice(&[2; KEY_LEN]);
        let set = [
            UnsealShare::from_bytes(&one).unwrap(),
            UnsealShare::from_bytes(&two).unwrap(),
        ];
        assert!(matches!(combine(&set, 1), Err(SealError::WrongShares)));
    }
}
