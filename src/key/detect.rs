//! Recognising what a key file holds, before anything is decrypted or a passphrase asked
//! for: PEM or DER, which of the key encodings, how it is encrypted — and, when it is not
//! a key at all, what it is instead (a certificate, a CSR, a public key, a PKCS#12
//! bundle, a truncated file), so the operator gets a reason rather than "invalid key".

use der::asn1::AnyRef;
use der::{Decode, Header, Reader, SliceReader, Tag, Tagged};
use zeroize::Zeroizing;

use super::armor;
use super::legacy::DekInfo;
use super::Encoding;

/// The unencrypted encodings of a private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plain {
    /// `PrivateKeyInfo` (`PRIVATE KEY`).
    Pkcs8,
    /// `RSAPrivateKey` (`RSA PRIVATE KEY`).
    Pkcs1,
    /// `ECPrivateKey` (`EC PRIVATE KEY`).
    Sec1,
}

impl Plain {
    pub fn name(self) -> &'static str {
        match self {
            Plain::Pkcs8 => "PKCS#8",
            Plain::Pkcs1 => "PKCS#1",
            Plain::Sec1 => "SEC1",
        }
    }
}

/// What the file holds.
pub(crate) enum Body {
    /// An unencrypted key.
    Plain(Plain, Zeroizing<Vec<u8>>),
    /// `EncryptedPrivateKeyInfo` DER.
    EncryptedPkcs8(Vec<u8>),
    /// A legacy-encrypted PEM block: the encoding inside, the DEK-Info, the ciphertext.
    Legacy(Plain, DekInfo, Vec<u8>),
}

/// A recognised key file.
pub(crate) struct KeyFile {
    pub encoding: Encoding,
    pub body: Body,
}

/// Recognises a key file. The error is a one-line problem description for
/// `Error::bad_file`.
pub(crate) fn detect(data: &[u8]) -> Result<KeyFile, String> {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("empty file: no key in it".into());
    }
    if armor::is_pem(data) {
        detect_pem(data)
    } else {
        let body = detect_der(data)?;
        Ok(KeyFile {
            encoding: Encoding::Der,
            body,
        })
    }
}

fn detect_pem(data: &[u8]) -> Result<KeyFile, String> {
    let blocks = armor::parse(data)?;
    let keys: Vec<&armor::Block> = blocks
        .iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"))
        .collect();
    let block = match keys.as_slice() {
        [one] => *one,
        [] => return Err(not_a_key_pem(&blocks)),
        many => {
            let labels: Vec<&str> = many.iter().map(|b| b.label.as_str()).collect();
            return Err(format!(
                "holds {} private keys ({}); certmesh expects exactly one per file",
                many.len(),
                labels.join(", ")
            ));
        }
    };
    let plain = match block.label.as_str() {
        "PRIVATE KEY" => Plain::Pkcs8,
        "RSA PRIVATE KEY" => Plain::Pkcs1,
        "EC PRIVATE KEY" => Plain::Sec1,
        "ENCRYPTED PRIVATE KEY" => {
            return Ok(KeyFile {
                encoding: Encoding::Pem,
                body: Body::EncryptedPkcs8(block.der.to_vec()),
            })
        }
        "DSA PRIVATE KEY" => return Err("a DSA private key: DSA keys are not supported".into()),
        "OPENSSH PRIVATE KEY" => {
            return Err(
                "an OpenSSH-format private key, which certmesh does not read; convert it with `ssh-keygen -p -m PKCS8 -f FILE`"
                    .into(),
            )
        }
        other => return Err(format!("unsupported private key format '{other}'")),
    };
    let dek = DekInfo::from_headers(block.header("Proc-Type"), block.header("DEK-Info"))?;
    let body = match dek {
        Some(dek) => {
            if let Some(c) = dek.cipher {
                if block.der.is_empty() || block.der.len() % c.block_len() != 0 {
                    return Err(format!(
                        "damaged legacy PEM key: the {} ciphertext is {} bytes, not a whole number of blocks (the file is truncated or damaged)",
                        c.name(),
                        block.der.len()
                    ));
                }
            }
            Body::Legacy(plain, dek, block.der.to_vec())
        }
        None => {
            check_der_length(&block.der).map_err(|e| format!("{} key: {e}", plain.name()))?;
            Body::Plain(plain, block.der.clone())
        }
    };
    Ok(KeyFile {
        encoding: Encoding::Pem,
        body,
    })
}

fn not_a_key_pem(blocks: &[armor::Block]) -> String {
    let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    let what = labels.iter().find_map(|l| match *l {
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => Some("a certificate"),
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Some("a certificate signing request"),
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "EC PUBLIC KEY" => Some("a public key"),
        "X509 CRL" => Some("a certificate revocation list"),
        "PKCS7" | "CMS" => Some("a PKCS#7 bundle"),
        _ => None,
    });
    match what {
        Some("a certificate") => {
            let cn = blocks
                .iter()
                .find(|b| b.label.ends_with("CERTIFICATE"))
                .and_then(|b| cert_name(&b.der));
            match cn {
                Some(cn) => format!(
                    "this is a certificate ({cn}), not a private key: give the key file instead"
                ),
                None => {
                    "this is a certificate, not a private key: give the key file instead".into()
                }
            }
        }
        Some(what) => format!("this is {what}, not a private key"),
        None if labels.is_empty() => "no PEM block found".into(),
        None => format!("no private key here (found: {})", labels.join(", ")),
    }
}

fn cert_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    crate::x509::common_name(&cert).map(|cn| format!("CN={cn}"))
}

fn detect_der(data: &[u8]) -> Result<Body, String> {
    if data[0] != 0x30 {
        let printable = data
            .iter()
            .take(512)
            .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            .count();
        return Err(if printable * 10 >= data.len().min(512) * 9 {
            "not a key file: text without a PEM '-----BEGIN' line".into()
        } else {
            format!(
                "not a key file: neither PEM nor DER (starts with byte 0x{:02x})",
                data[0]
            )
        });
    }
    check_der_length(data)?;
    let children = top_level(data).map_err(|e| format!("damaged DER ({})", der_problem(&e)))?;
    let tags: Vec<Tag> = children.iter().map(|c| c.tag()).collect();
    let int = |i: usize, v: u8| {
        children
            .get(i)
            .is_some_and(|c| c.tag() == Tag::Integer && c.value() == [v])
    };
    use Tag::{BitString, Integer, OctetString, Sequence};
    match tags.as_slice() {
        [Integer, Sequence, OctetString, ..] if int(0, 0) || int(0, 1) => {
            Ok(Body::Plain(Plain::Pkcs8, Zeroizing::new(data.to_vec())))
        }
        [Sequence, OctetString] => Ok(Body::EncryptedPkcs8(data.to_vec())),
        [Integer, OctetString, ..] if int(0, 1) => Ok(Body::Plain(Plain::Sec1, Zeroizing::new(data.to_vec()))),
        [Integer, Integer, Integer, Integer, Integer, Integer, Integer, Integer, Integer, ..]
            if int(0, 0) || int(0, 1) =>
        {
            Ok(Body::Plain(Plain::Pkcs1, Zeroizing::new(data.to_vec())))
        }
        [Sequence, Sequence, BitString] => {
            if let Ok((_, cert)) = x509_parser::parse_x509_certificate(data) {
                let name = crate::x509::common_name(&cert).map(|cn| format!(" (CN={cn})")).unwrap_or_default();
                Err(format!("this is a DER certificate{name}, not a private key: give the key file instead"))
            } else {
                Err("this is a DER certificate or certificate signing request, not a private key".into())
            }
        }
        [Sequence, BitString] => Err("this is a DER public key, not a private key".into()),
        [Integer, Sequence, ..] if int(0, 3) => Err(
            "this is a PKCS#12 (.p12/.pfx) bundle, not a bare private key; extract the key first (e.g. openssl pkcs12 -nocerts)"
                .into(),
        ),
        _ => Err("not a private key in any format certmesh knows (PKCS#8, PKCS#1, SEC1)".into()),
    }
}

fn top_level(data: &[u8]) -> der::Result<Vec<AnyRef<'_>>> {
    let mut r = SliceReader::new(data)?;
    let children = r.sequence(|r| {
        let mut v = Vec::new();
        while !r.is_finished() {
            v.push(AnyRef::decode(r)?);
        }
        Ok::<_, der::Error>(v)
    })?;
    Ok(children)
}

/// Checks that a DER value's outer length matches the data, so a cut-off file is
/// reported as truncated rather than as an unknown format.
pub(crate) fn check_der_length(data: &[u8]) -> Result<(), String> {
    let (header_len, body_len) = match der_header(data) {
        Ok(lengths) => lengths,
        Err(e) if matches!(e.kind(), der::ErrorKind::Incomplete { .. }) => {
            return Err(format!(
                "truncated or damaged: only {} bytes, too short for a DER structure",
                data.len()
            ))
        }
        Err(e) => return Err(format!("damaged DER ({})", der_problem(&e))),
    };
    let declared = header_len.saturating_add(body_len);
    if declared > data.len() {
        return Err(format!(
            "truncated: the DER structure declares {declared} bytes but only {} are present (the file is cut off or damaged)",
            data.len()
        ));
    }
    if data[declared..].iter().any(|b| *b != 0) {
        return Err(format!(
            "damaged: {} unexpected bytes after the {declared}-byte DER structure",
            data.len() - declared
        ));
    }
    Ok(())
}

/// Tag-and-length header of a DER value: (header length, body length). The body may be
/// missing or cut short: only the header is read.
fn der_header(data: &[u8]) -> der::Result<(usize, usize)> {
    let mut r = SliceReader::new(data)?;
    let header = Header::decode(&mut r)?;
    Ok((
        usize::try_from(r.position())?,
        usize::try_from(header.length())?,
    ))
}

/// A `der` error as a short phrase; running out of input is called truncation.
pub(crate) fn der_problem(e: &der::Error) -> String {
    match e.kind() {
        der::ErrorKind::Incomplete { .. } => "truncated: the data ends early".into(),
        _ => crate::x509::short_err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_header_lengths() {
        assert_eq!(der_header(&[0x30, 0x03, 2, 1, 0]).unwrap(), (2, 3));
        // Only the header is read: a body cut short still yields the declared length.
        assert_eq!(
            der_header(&[0x30, 0x82, 0x01, 0x00, 0x02]).unwrap(),
            (4, 256)
        );
        assert_eq!(
            der_header(&[0x30, 0x84, 0x01, 0, 0, 0]).unwrap(),
            (6, 0x0100_0000)
        );
        for short in [&[][..], &[0x30], &[0x30, 0x82, 0x01]] {
            let e = der_header(short).unwrap_err();
            assert!(matches!(e.kind(), der::ErrorKind::Incomplete { .. }), "{e}");
        }
        // Not DER: a length in more bytes than needed, or more than four length bytes.
        assert!(der_header(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_err());
        assert!(der_header(&[0x30, 0x85, 1, 0, 0, 0, 0]).is_err());
        assert!(check_der_length(&[0x30, 0x02, 5, 0, 0, 0]).is_ok());
        assert!(check_der_length(&[0x30, 0x02, 5, 0, 1])
            .unwrap_err()
            .contains("1 unexpected bytes"));
        assert!(check_der_length(&[0x30])
            .unwrap_err()
            .starts_with("truncated or damaged: only 1 bytes"));
        assert!(check_der_length(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0])
            .unwrap_err()
            .starts_with("damaged DER"));
    }

    #[test]
    fn recognises_non_keys() {
        assert!(detect(b"").err().unwrap().starts_with("empty file"));
        assert!(detect(b"hello\n")
            .err()
            .unwrap()
            .contains("text without a PEM"));
        assert!(detect(&[0x30, 0x82, 0x01, 0x00, 0x02])
            .err()
            .unwrap()
            .starts_with("truncated"));
        assert!(detect(&[0xff, 0, 1])
            .err()
            .unwrap()
            .contains("neither PEM nor DER"));
        let pem = armor::encode("CERTIFICATE", &[], &[0x30, 0x00]);
        assert!(detect(pem.as_bytes())
            .err()
            .unwrap()
            .starts_with("this is a certificate"));
        let pem = armor::encode("PUBLIC KEY", &[], &[0x30, 0x00]);
        assert_eq!(
            detect(pem.as_bytes()).err().unwrap(),
            "this is a public key, not a private key"
        );
    }
}
