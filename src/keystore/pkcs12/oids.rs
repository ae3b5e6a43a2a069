//! Object identifiers of the PKCS#12 structures certmesh writes (RFC 7292, RFC 8018,
//! PKCS#9), shared by the encoder and the read-back check so both speak of the same
//! algorithms.

use der::asn1::ObjectIdentifier as Oid;

/// pkcs7-data: the AuthenticatedSafe and the unencrypted SafeContents.
pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// pkcs7-encryptedData: the encrypted SafeContents holding the certificates.
pub const ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");

/// keyBag: an unencrypted PKCS#8 key.
pub const KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.1");
pub const SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
pub const CERT_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.3");
pub const X509_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.22.1");

pub const FRIENDLY_NAME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.20");
pub const LOCAL_KEY_ID: Oid = Oid::new_unwrap("1.2.840.113549.1.9.21");
/// Oracle's trusted-certificate attribute: Java's PKCS12 KeyStore loads a certificate
/// without a key as a trusted entry only when it carries this.
pub const ORACLE_TRUSTED_KEY_USAGE: Oid = Oid::new_unwrap("2.16.840.1.113894.746875.1.1");
/// The attribute's value: trusted for any purpose, as keytool writes it.
pub const ANY_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37.0");

pub const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
pub const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
pub const HMAC_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
pub const AES_256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
pub const PBE_SHA1_3DES: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.3");

pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
