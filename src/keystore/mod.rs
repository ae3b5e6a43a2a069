//! Keystores and truststores in the formats Java, OpenSSL, Windows and IBM products read:
//! PKCS#12 (with p12-keystore), Java's JKS and JCEKS (own codec), and format detection by
//! content.

pub mod detect;
pub mod jceks;
pub mod jks;
pub mod pkcs12;
pub mod storefile;
pub mod trust;
