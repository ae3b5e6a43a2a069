//! Keystores and truststores in the formats Java, OpenSSL, Windows and IBM products read:
//! PKCS#12 (own writer, p12-keystore for reading), Java's JKS and JCEKS (own codec), and
//! format detection by content.

pub mod alias;
pub mod bundle;
pub mod detect;
pub mod edit;
pub mod jceks;
pub mod jks;
pub mod pkcs12;
pub mod storefile;
pub mod trust;
