//! Password hashing: argon2id with the configured (OWASP) parameters, a
//! salt from the injected random source (never the OS's, so the simulator
//! and tests replay), PHC strings in storage.
//!
//! A hash takes tens of milliseconds of CPU on the async runtime (the
//! system runs no OS threads of its own), so at most
//! `users.hash_concurrency_max` run at once and at most
//! `users.hash_waiting_max` requests wait for a slot; one more is refused
//! at once (503) instead of queueing without bound.
//!
//! A login for an unknown email verifies against a dummy hash made with
//! the same parameters, so it takes as long as a wrong password.
//!
//! Layer: inside the users service; imports the shared types.

use crate::config::UsersSettings;
use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use ticketing_domain::ports::RandomSource;
use tokio::sync::{OnceCell, Semaphore};

/// Hashes and verifies passwords within the configured bounds.
#[derive(Debug)]
pub struct Hasher {
    argon: Argon2<'static>,
    slots: Semaphore,
    waiting: AtomicUsize,
    waiting_max: usize,
    dummy: OnceCell<String>,
    /// argon2 computations so far (hashes and verifications, the dummy's
    /// too): what a test reads to see that every login did the same work.
    computed: AtomicUsize,
}

/// Counts a request waiting for (or holding) a slot while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hasher {
    /// Refuses parameters argon2 does not accept (memory below 8 KiB per
    /// lane, zero iterations, …).
    pub fn new(settings: &UsersSettings) -> anyhow::Result<Hasher> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| {
            anyhow::anyhow!("users.argon2_* settings are not valid argon2id parameters: {e}")
        })?;
        Ok(Hasher {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            slots: Semaphore::new(settings.hash_concurrency_max.max(1)),
            waiting: AtomicUsize::new(0),
            waiting_max: settings.hash_waiting_max,
            dummy: OnceCell::new(),
            computed: AtomicUsize::new(0),
        })
    }

    /// A PHC string for `password`, salted from `rng`.
    pub async fn hash(&self, password: &str, rng: &dyn RandomSource) -> Result<String, ApiError> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let _slot = self.slot().await?;
        self.hash_now(password, &salt)
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown
    /// email), the same work against the dummy hash, and `false`.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
        rng: &dyn RandomSource,
    ) -> Result<bool, ApiError> {
        let dummy = self.dummy(rng).await?;
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (dummy, false),
        };
        let parsed = PasswordHash::new(phc)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored password hash: {e}")))?;
        let _slot = self.slot().await?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        let ok = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && real)
    }

    /// argon2 computations so far.
    pub fn computed(&self) -> usize {
        self.computed.load(Ordering::Relaxed)
    }

    fn hash_now(&self, password: &str, salt: &[u8]) -> Result<String, ApiError> {
        self.computed.fetch_add(1, Ordering::Relaxed);
        let salt = SaltString::encode_b64(salt)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("salt: {e}")))?;
        let hash = self
            .argon
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("argon2: {e}")))?;
        Ok(hash.to_string())
    }

    async fn dummy(&self, rng: &dyn RandomSource) -> Result<&str, ApiError> {
        let s = self
            .dummy
            .get_or_try_init(|| async {
                let mut secret = [0u8; 32];
                rng.fill_bytes(&mut secret);
                self.hash(&hex::encode(secret), rng).await
            })
            .await?;
        Ok(s)
    }

    async fn slot(&self) -> Result<(Waiting<'_>, tokio::sync::SemaphorePermit<'_>), ApiError> {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.waiting_max {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::Unavailable(
                "too many logins at once; retry shortly".into(),
            ));
        }
        let waiting = Waiting(&self.waiting);
        let permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        Ok((waiting, permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_runtime::ChaChaRandom;

    fn light() -> UsersSettings {
        UsersSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..UsersSettings::default()
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = Hasher::new(&light()).unwrap();
        let rng = ChaChaRandom::from_seed(1);
        let phc = h.hash("correct horse", &rng).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse", Some(&phc), &rng).await.unwrap());
        assert!(!h.verify("correct horsf", Some(&phc), &rng).await.unwrap());
        // No stored hash: never true, even for the dummy's own input.
        assert!(!h.verify("correct horse", None, &rng).await.unwrap());
        // Salts differ per hash.
        assert_ne!(phc, h.hash("correct horse", &rng).await.unwrap());
    }

    #[test]
    fn parameters_argon2_refuses_are_refused_at_start() {
        let bad = UsersSettings {
            argon2_iterations: 0,
            ..UsersSettings::default()
        };
        assert!(Hasher::new(&bad).is_err());
    }

    #[tokio::test]
    async fn requests_over_the_waiting_bound_are_refused() {
        let s = UsersSettings {
            hash_concurrency_max: 1,
            hash_waiting_max: 1,
            ..light()
        };
        let h = Hasher::new(&s).unwrap();
        let held = h.slot().await.unwrap();
        let second = h.slot().await;
        assert!(matches!(second, Err(ApiError::Unavailable(_))));
        drop(held);
        assert!(h.slot().await.is_ok(), "a slot is free again once released");
    }
}
