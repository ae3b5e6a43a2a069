//! certmesh: a private PKI and certificate-lifecycle library for server clusters.
//!
//! The `certmesh` binary is a thin front for this library. The library never prints and
//! never reads the terminal: it returns values and typed errors, and the CLI decides how to
//! present them.
#![forbid(unsafe_code)]

pub mod ca;
pub mod cert;
pub mod check;
pub mod cluster;
pub mod duration;
pub mod error;
pub mod fsio;
pub mod inspect;
pub mod inventory;
pub mod key;
pub mod keystore;
pub mod pass;
pub mod probe;
pub mod process;
pub mod verify;
pub mod x509;

pub use error::{Error, LockHolder, Result};
