//! Keystores and truststores in the formats Java, OpenSSL, Windows and IBM products read.

pub mod pkcs12;
