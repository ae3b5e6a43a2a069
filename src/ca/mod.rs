//! The CA store: its layout on disk, creating roots and intermediates, and issuing leaf
//! certificates and CSR signatures from the issuing CA.
//!
//! Layout under the store's home directory:
//!
//! ```text
//! store.toml                 which authorities exist, which one issues; written last
//! ca/<id>/cert.pem           CA certificate (root, intermediate)
//! ca/<id>/key.pem            CA key, PKCS#8, encrypted when the store was made with a passphrase
//! issued/<name>/             key.pem cert.pem chain.pem fullchain.pem ca.pem
//! inventory.sqlite           every certificate issued
//! backup/<timestamp>/        what a replacement moved aside (`rollback` puts it back)
//! crl.pem                    the issuing CA's current CRL
//! .lock                      held by the run that changes the store
//! ```

mod crl;
mod issued;
mod renew;
mod rollback;
mod rollover;
mod store;

pub use crl::{CrlWritten, Reason, Revoked};
pub use issued::{IssuedEntry, ISSUED_DIR};
pub use rollback::{Generation, RolledBack};

pub use renew::{alg_of, Problem, RenewReport, Renewed, SHARED_ENTRY_PREFIX};
pub use rollover::{next_step, Advance, RolloverStatus, RolloverStep};
pub use store::{
    check_entry_name, AuthorityEntry, CaInit, IntermediateInit, IssueBatch, IssueRequest, Issued,
    SignRequest, Signed, Signer, Store, StoreConfig,
};
