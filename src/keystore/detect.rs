//! Telling keystore formats apart by content.
//!
//! File names lie: since Java 9 keytool writes PKCS#12 into files named `*.jks` unless told
//! `-storetype JKS`, and product guides keep the old names. So the first bytes decide.

/// A keystore format, as recognised from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreFormat {
    Jks,
    Jceks,
    Pkcs12,
    Unknown,
}

impl StoreFormat {
    /// The name keytool uses for `-storetype`.
    pub fn name(self) -> &'static str {
        match self {
            StoreFormat::Jks => "JKS",
            StoreFormat::Jceks => "JCEKS",
            StoreFormat::Pkcs12 => "PKCS12",
            StoreFormat::Unknown => "unknown",
        }
    }
}

/// Recognises JKS (FEEDFEED), JCEKS (CECECECE) and PKCS#12 (a DER or BER SEQUENCE whose
/// first element is INTEGER 3, the PFX version).
pub fn detect(data: &[u8]) -> StoreFormat {
    match data.get(..4) {
        Some([0xfe, 0xed, 0xfe, 0xed]) => return StoreFormat::Jks,
        Some([0xce, 0xce, 0xce, 0xce]) => return StoreFormat::Jceks,
        _ => {}
    }
    if is_pfx(data) {
        StoreFormat::Pkcs12
    } else {
        StoreFormat::Unknown
    }
}

fn is_pfx(data: &[u8]) -> bool {
    use der::{Decode, ErrorKind, Header, Reader, SliceReader, Tag};
    let Ok(mut r) = SliceReader::new(data) else {
        return false;
    };
    // Only the header is read, so a truncated file is still recognised. An indefinite
    // length (BER) is recognised too, to be refused later with a message that says so.
    let body = match Header::decode(&mut r) {
        Ok(h) if h.tag() == Tag::Sequence => usize::try_from(r.position()).unwrap_or(0),
        Err(e) if e.kind() == ErrorKind::IndefiniteLength && data[0] == 0x30 => 2,
        _ => return false,
    };
    body > 0 && data.get(body..body + 3) == Some(&[0x02, 0x01, 0x03])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content() {
        assert_eq!(
            detect(&[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]),
            StoreFormat::Jks
        );
        assert_eq!(detect(&[0xce, 0xce, 0xce, 0xce]), StoreFormat::Jceks);
        assert_eq!(
            detect(&[0x30, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x03]),
            StoreFormat::Pkcs12
        );
        assert_eq!(detect(&[0x30, 0x80, 0x02, 0x01, 0x03]), StoreFormat::Pkcs12);
        assert_eq!(detect(b"-----BEGIN CERTIFICATE-----"), StoreFormat::Unknown);
        assert_eq!(detect(&[]), StoreFormat::Unknown);
        assert_eq!(detect(&[0x30]), StoreFormat::Unknown);
        assert_eq!(
            detect(&[0x30, 0x84, 0, 0, 0x0a, 0x00, 0x02, 0x01, 0x03]),
            StoreFormat::Unknown,
            "a length in more bytes than needed is not DER"
        );
        assert_eq!(
            detect(&[0x31, 0x03, 0x02, 0x01, 0x03]),
            StoreFormat::Unknown
        );
        assert_eq!(
            detect(&[0x30, 0x03, 0x02, 0x01, 0x02]),
            StoreFormat::Unknown
        );
    }
}
