//! Keystores: Java's JKS and JCEKS (own codec), and format detection by content.

pub mod detect;
pub mod jceks;
pub mod jks;
pub mod storefile;
pub mod trust;
