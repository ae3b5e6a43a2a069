//! How a `cluster plan` / `apply` / `renew --cluster` run is asked to behave.

/// Told about progress through the slow part of a run (key generation and signing), so a
/// front end can show it; the library itself never prints.
pub trait Progress: Sync {
    /// `total` certificates are about to be issued.
    fn start(&self, total: u64);
    /// One more is done.
    fn step(&self);
    /// All are done.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64) {}
    fn step(&self) {}
    fn finish(&self) {}
}

/// How to run.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Compute and report only (`cluster plan`).
    pub dry_run: bool,
    /// Push changed files to members that have a `deploy` section, and reload them.
    pub deploy: bool,
    /// Members deployed at once.
    pub parallel: usize,
    /// Wait for another run's lock instead of failing with exit code 75.
    pub wait: bool,
    /// Keep every existing certificate as it is (after a rollback): only write and
    /// deploy the members' files.
    pub keep_certificates: bool,
    /// Identities to renew now although their policy would not (keeping the key unless
    /// the policy is `new-key`): how a `manual` identity is renewed deliberately.
    pub renew_identities: &'a [String],
    /// Identities to give a new key now, whatever their policy (data encrypted with the
    /// old key becomes unreadable: a deliberate step).
    pub rekey_identities: &'a [String],
    /// `(identity, member)`: the shared identity takes that member's current key, so what
    /// was encrypted with it stays readable (migrating per-member keys to a shared one).
    pub adopt_keys: &'a [(String, String)],
    pub progress: &'a dyn Progress,
    /// Order of deploys and the probe after each reload.
    pub roll: super::roll::RollOptions,
}

impl Options<'_> {
    pub(crate) fn rekey(&self, identity: &str) -> bool {
        self.rekey_identities.iter().any(|i| i == identity)
    }

    pub(crate) fn renew(&self, identity: &str) -> bool {
        self.renew_identities.iter().any(|i| i == identity)
    }

    pub(crate) fn adopt(&self, identity: &str) -> Option<&str> {
        self.adopt_keys
            .iter()
            .find(|(i, _)| i == identity)
            .map(|(_, m)| m.as_str())
    }
}
