//! A-labels (`xn--...`, RFC 5890): the ASCII form of an internationalised DNS label. A
//! label that starts `xn--` but does not decode to a valid U-label is refused before it
//! reaches a certificate: linters report it (zlint, pkilint's CA/B Forum profile), and
//! clients that convert names to Unicode cannot match it.
//!
//! Checked without Unicode tables: the Punycode (RFC 3492) must decode, re-encode to the
//! same label, and give a label with at least one non-ASCII character and none of those
//! IDNA 2008 never allows (upper case, controls, spaces, ASCII punctuation, dots of other
//! scripts, a leading combining mark, `--` in the third and fourth place).

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 0x80;

/// `Ok` for a label that is not an A-label or is a valid one; otherwise why not.
pub fn check_label(label: &str) -> Result<(), String> {
    let lower = label.to_ascii_lowercase();
    let Some(puny) = lower.strip_prefix("xn--") else {
        return Ok(());
    };
    let bad = |why: &str| Err(format!("'{label}' is not a valid IDNA A-label ({why})"));
    let Some(decoded) = decode(puny) else {
        return bad("its Punycode does not decode");
    };
    if encode(&decoded).as_deref() != Some(puny) {
        return bad("its Punycode is not in canonical form");
    }
    if decoded.is_ascii() {
        return bad("it decodes to plain ASCII, which needs no A-label");
    }
    let chars: Vec<char> = decoded.chars().collect();
    if chars.len() >= 4 && chars[2] == '-' && chars[3] == '-' {
        return bad("its Unicode form has '--' in the third and fourth place");
    }
    if chars.first() == Some(&'-') || chars.last() == Some(&'-') {
        return bad("its Unicode form starts or ends with '-'");
    }
    if chars.first().is_some_and(|c| is_combining_mark(*c)) {
        return bad("its Unicode form starts with a combining mark");
    }
    if let Some(c) = chars.iter().find(|c| disallowed(**c)) {
        return bad(&format!(
            "its Unicode form holds U+{:04X}, which IDNA does not allow",
            *c as u32
        ));
    }
    Ok(())
}

fn disallowed(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    }
    c.is_uppercase()
        || c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{3002}' | '\u{FF0E}' | '\u{FF61}' | '\u{FFFD}')
        || ('\u{FF01}'..='\u{FF5E}').contains(&c) // fullwidth ASCII: maps to ASCII, never valid
}

fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
    delta /= if first { DAMP } else { 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

fn digit_value(b: u8) -> Option<u32> {
    match b {
        b'a'..=b'z' => Some(u32::from(b - b'a')),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 26),
        _ => None,
    }
}

fn digit_char(d: u32) -> char {
    match d {
        0..=25 => (b'a' + d as u8) as char,
        _ => (b'0' + (d - 26) as u8) as char,
    }
}

fn threshold(k: u32, bias: u32) -> u32 {
    if k <= bias {
        T_MIN
    } else if k >= bias + T_MAX {
        T_MAX
    } else {
        k - bias
    }
}

/// RFC 3492 decoding of lower-case Punycode; `None` when it is not valid Punycode.
fn decode(input: &str) -> Option<String> {
    let (basic, rest) = match input.rfind('-') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => ("", input),
    };
    if !basic.is_ascii() {
        return None;
    }
    let mut out: Vec<char> = basic.chars().collect();
    let (mut n, mut i, mut bias) = (INITIAL_N, 0u32, INITIAL_BIAS);
    let bytes = rest.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        let old_i = i;
        let mut w = 1u32;
        let mut k = BASE;
        loop {
            let digit = digit_value(*bytes.get(pos)?)?;
            pos += 1;
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = threshold(k, bias);
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = u32::try_from(out.len()).ok()? + 1;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        out.insert(i as usize, char::from_u32(n)?);
        i += 1;
    }
    Some(out.into_iter().collect())
}

/// RFC 3492 encoding; `None` on overflow.
fn encode(input: &str) -> Option<String> {
    let chars: Vec<u32> = input.chars().map(u32::from).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = u32::try_from(out.len()).ok()?;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut h) = (INITIAL_N, 0u32, INITIAL_BIAS, basic);
    let total = u32::try_from(chars.len()).ok()?;
    while h < total {
        let m = *chars.iter().filter(|&&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(h + 1)?)?;
        n = m;
        for &c in &chars {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = threshold(k, bias);
                    if q < t {
                        break;
                    }
                    out.push(digit_char(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit_char(q));
                bias = adapt(delta, h + 1, h == basic);
                delta = 0;
                h += 1;
            }
        }
        delta += 1;
        n += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3492_samples_round_trip() {
        // RFC 3492 7.1 (A) Arabic, (L) Japanese, and the classic "bücher".
        for (puny, text) in [
            ("egbpdaj6bu4bxfgehfvwxn", "ليهمابتكلموشعربي؟"),
            ("3b-ww4c5e180e575a65lsy2b", "3年b組金八先生"),
            ("bcher-kva", "bücher"),
            ("mnchen-3ya", "münchen"),
        ] {
            assert_eq!(decode(puny).as_deref(), Some(text), "{puny}");
            assert_eq!(encode(text).as_deref(), Some(puny), "{text}");
        }
    }

    #[test]
    fn a_labels_are_checked() {
        for ok in ["xn--bcher-kva", "xn--mnchen-3ya", "node1", "xn--e1afmkfd"] {
            assert_eq!(check_label(ok), Ok(()), "{ok}");
        }
        for bad in [
            "xn--",           // nothing encoded
            "xn--abc-",       // plain ASCII
            "xn--99999999",   // digits that never end
            "xn--bcher-kv8",  // a digit sequence that does not end
            "xn--bcher-kva-", // '-' in the encoded part
        ] {
            assert!(check_label(bad).is_err(), "{bad} accepted");
        }
        // Upper case in the Unicode form: "Ü" encodes to a label IDNA never produces.
        let upper = format!("xn--{}", encode("Übung").unwrap());
        assert!(
            check_label(&upper).unwrap_err().contains("U+00DC"),
            "{upper}"
        );
        // A leading combining mark.
        let mark = format!("xn--{}", encode("\u{301}a").unwrap());
        assert!(check_label(&mark).unwrap_err().contains("combining"));
    }
}
