//! PEM armour for key files: reading it with diagnostics an operator can act on, and
//! writing it without leaving copies of key material in freed memory.
//!
//! The general-purpose `pem` crate drops blocks it cannot frame (a file cut off before its
//! END line reads as "no key here") and keeps contents in ordinary vectors. Key files need
//! both things done differently: a truncated key must be reported as truncated, and
//! decoded key bytes must live in zeroizing buffers. The RFC 1421 headers that legacy
//! OpenSSL encryption uses (`Proc-Type`, `DEK-Info`) are kept.

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

/// One `-----BEGIN LABEL-----` ... `-----END LABEL-----` block.
pub(crate) struct Block {
    /// The label between `BEGIN ` and the closing dashes, e.g. `RSA PRIVATE KEY`.
    pub label: String,
    /// RFC 1421 headers (`Proc-Type`, `DEK-Info`) in file order.
    pub headers: Vec<(String, String)>,
    /// The decoded contents.
    pub der: Zeroizing<Vec<u8>>,
}

impl Block {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// True when `data` contains a PEM BEGIN line, i.e. should be read as text.
pub(crate) fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Parses every PEM block in `data`. Text outside blocks is ignored, as OpenSSL does
/// (files often carry "Bag Attributes" or comments before the key). The error is a
/// one-line problem description for `Error::bad_file`.
pub(crate) fn parse(data: &[u8]) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut lines = data.split(|&b| b == b'\n').enumerate();
    while let Some((_, line)) = lines.next() {
        let Some(label) = frame_label(line, "BEGIN") else {
            continue;
        };
        let label = label.to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut b64 = Zeroizing::new(Vec::new());
        let mut in_headers = true;
        let mut closed = false;
        for (no, raw) in lines.by_ref() {
            let line = trim(raw);
            if let Some(end) = frame_label(raw, "END") {
                if end != label {
                    return Err(format!(
                        "damaged PEM: block 'BEGIN {label}' ends with 'END {end}' (line {})",
                        no + 1
                    ));
                }
                closed = true;
                break;
            }
            if frame_label(raw, "BEGIN").is_some() {
                return Err(format!(
                    "truncated PEM: block 'BEGIN {label}' has no END line before the next BEGIN (line {})",
                    no + 1
                ));
            }
            if in_headers {
                if line.is_empty() {
                    if !headers.is_empty() {
                        in_headers = false;
                    }
                    continue;
                }
                if let Some(pos) = line.iter().position(|&b| b == b':') {
                    let key = String::from_utf8_lossy(&line[..pos]).trim().to_string();
                    let value = String::from_utf8_lossy(&line[pos + 1..]).trim().to_string();
                    headers.push((key, value));
                    continue;
                }
                if (raw.first() == Some(&b' ') || raw.first() == Some(&b'\t'))
                    && !headers.is_empty()
                {
                    // RFC 1421 continuation line.
                    if let Some(last) = headers.last_mut() {
                        last.1.push_str(String::from_utf8_lossy(line).trim());
                    }
                    continue;
                }
                in_headers = false;
            }
            if line.is_empty() {
                continue;
            }
            if let Some(bad) = line.iter().find(|b| !is_base64_byte(**b)) {
                return Err(format!(
                    "damaged PEM: block '{label}' has a non-base64 character {} on line {}",
                    describe_byte(*bad),
                    no + 1
                ));
            }
            b64.extend_from_slice(line);
        }
        if !closed {
            return Err(format!(
                "truncated PEM: block 'BEGIN {label}' has no END line (the file is cut off or damaged)"
            ));
        }
        let der = decode_base64(&b64).map_err(|why| {
            format!("damaged PEM: block '{label}' {why} (the file is truncated or damaged)")
        })?;
        blocks.push(Block {
            label,
            headers,
            der,
        });
    }
    Ok(blocks)
}

fn decode_base64(b64: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    if b64.is_empty() {
        return Err("is empty");
    }
    if b64.len() % 4 != 0 {
        return Err("has a base64 body whose length is not a multiple of 4");
    }
    let mut buf = Zeroizing::new(vec![0u8; b64.len() / 4 * 3]);
    let n = Base64::decode(b64, &mut buf)
        .map_err(|_| "has invalid base64")?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// `-----BEGIN LABEL-----` → `LABEL` (for `kind` = "BEGIN" or "END").
fn frame_label<'a>(line: &'a [u8], kind: &str) -> Option<&'a str> {
    let line = std::str::from_utf8(trim(line)).ok()?;
    let rest = line
        .strip_prefix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')?;
    rest.strip_suffix("-----")
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &line[start..end]
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("0x{b:02x}")
    }
}

/// PEM-encodes `der` under `label` with optional headers, LF line endings and 64-column
/// lines, into zeroizing memory (base64 of a key is as secret as the key).
pub(crate) fn encode(label: &str, headers: &[(&str, String)], der: &[u8]) -> Zeroizing<String> {
    let mut b64 = Zeroizing::new(vec![0u8; Base64::encoded_len(der)]);
    let text_len = Base64::encode(der, &mut b64).map(str::len).unwrap_or(0);
    let mut out = Zeroizing::new(String::with_capacity(text_len + text_len / 64 + 128));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    if !headers.is_empty() {
        for (k, v) in headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out.push('\n');
    }
    for chunk in b64[..text_len].chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_headers() {
        let der: Vec<u8> = (0u8..=200).collect();
        let text = encode(
            "RSA PRIVATE KEY",
            &[("Proc-Type", "4,ENCRYPTED".into())],
            &der,
        );
        assert!(text.starts_with("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n"));
        let blocks = parse(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "RSA PRIVATE KEY");
        assert_eq!(blocks[0].header("proc-type"), Some("4,ENCRYPTED"));
        assert_eq!(blocks[0].der.as_slice(), der.as_slice());
    }

    #[test]
    fn crlf_and_surrounding_text_are_accepted() {
        let text = encode("PRIVATE KEY", &[], b"hello world").replace('\n', "\r\n");
        let text = format!("Bag Attributes\r\n    localKeyID: 01\r\n{text}trailing");
        let blocks = parse(text.as_bytes()).unwrap();
        assert_eq!(blocks[0].der.as_slice(), b"hello world");
        assert!(blocks[0].headers.is_empty());
    }

    #[test]
    fn truncation_and_damage_are_named() {
        let text = encode("PRIVATE KEY", &[], &[7u8; 300]);
        let cut = &text.as_bytes()[..text.len() / 2];
        assert!(parse(cut).err().unwrap().starts_with("truncated PEM"));
        let bad = text.replacen("BwcH", "B!cH", 1);
        assert!(parse(bad.as_bytes())
            .err()
            .unwrap()
            .contains("non-base64 character '!'"));
        let wrong_end = text.replace("END PRIVATE KEY", "END CERTIFICATE");
        assert!(parse(wrong_end.as_bytes())
            .err()
            .unwrap()
            .contains("ends with 'END CERTIFICATE'"));
        assert!(parse(b"no pem here").unwrap().is_empty());
    }
}
