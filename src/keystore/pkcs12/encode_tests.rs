//! Tests of the encoder and the read-back check: how many key derivations a file costs,
//! that p12-keystore (an independent decoder) reads what the encoder writes, and that the
//! check catches a changed MAC, a changed ciphertext and a wrong retained key.

use std::ops::Range;

use p12_keystore::Pkcs12Archive;

use super::kdf::counter::derivations;
use super::*;
use crate::key::KeyAlg;

fn self_signed(key: &PrivateKey, cn: &str) -> Vec<u8> {
    crate::cert::testing::self_signed_by(key, cn).der().to_vec()
}

/// A key with its certificate and one more certificate standing for the CA.
struct Fixture {
    key: PrivateKey,
    certs: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let key = PrivateKey::generate(KeyAlg::P256).unwrap();
    let ca_key = PrivateKey::generate(KeyAlg::P256).unwrap();
    let certs = vec![
        self_signed(&key, "node.example.com"),
        self_signed(&ca_key, "Example CA"),
    ];
    Fixture { key, certs }
}

fn trust_entries() -> Vec<(String, Vec<u8>)> {
    let a = PrivateKey::generate(KeyAlg::P256).unwrap();
    let b = PrivateKey::generate(KeyAlg::P256).unwrap();
    vec![
        ("zeta-ca".to_string(), self_signed(&a, "Zeta CA")),
        ("alpha-ca".to_string(), self_signed(&b, "Alpha CA")),
    ]
}

const MODES: [Compat; 2] = [Compat::Modern, Compat::Legacy];

#[test]
fn a_keystore_costs_one_derivation_per_salt_and_one_for_the_mac() {
    let f = fixture();
    let pass = Secret::new("changeit".into());
    for compat in MODES {
        let entry = KeyEntry {
            alias: "node",
            key: &f.key,
            certs: &f.certs,
        };
        let before = derivations();
        let file = key_store(&entry, compat, &pass).unwrap();
        // The MAC's, and the bags': one shared salt for PBES2 (random IVs), one per bag
        // for PKCS#12 PBE (whose IV comes from the salt).
        let bag_salts = match compat {
            Compat::Modern => 1,
            Compat::Legacy => 2,
        };
        assert_eq!(derivations() - before, 1 + bag_salts, "{compat:?} keystore");
        // What the file says: each bag's salt is written beside it.
        let encoded = encode::encode(
            Some(&encode::KeyBag {
                pkcs8: f.key.pkcs8_der(),
                friendly_name: "node",
                local_key_id: b"id",
            }),
            &[encode::CertBag {
                der: &f.certs[0],
                friendly_name: None,
                local_key_id: Some(b"id"),
                trusted: false,
            }],
            compat.protection(),
            &pass,
        )
        .unwrap();
        let salts: Vec<&[u8]> = encoded
            .secrets
            .bags
            .iter()
            .map(|k| k.salt.as_slice())
            .collect();
        let written = |salt: &[u8]| {
            encoded
                .bytes
                .windows(salt.len())
                .filter(|w| *w == salt)
                .count()
        };
        match compat {
            Compat::Modern => {
                assert_eq!(salts[0], salts[1], "PBES2 bags share their salt");
                assert_eq!(written(salts[0]), 2, "and each bag names it");
            }
            Compat::Legacy => {
                assert_ne!(salts[0], salts[1], "PBE bags have their own salts");
                assert_eq!((written(salts[0]), written(salts[1])), (1, 1));
            }
        }

        let before = derivations();
        trust_store(&trust_entries(), compat, &pass).unwrap();
        // The certificates' bag and the MAC.
        assert_eq!(derivations() - before, 2, "{compat:?} truststore");

        let dir = tempfile::tempdir().unwrap();
        let before = derivations();
        save(&dir.path().join("k.p12"), &file, &pass, Overwrite::Refuse).unwrap();
        assert_eq!(derivations(), before, "save derives nothing");
    }
}

#[test]
fn p12_keystore_reads_keystores_back() {
    let f = fixture();
    let pass = Secret::new("pässwörd".into());
    let id = crate::x509::sha1(&f.certs[0]);
    for compat in MODES {
        let entry = KeyEntry {
            alias: "node-1",
            key: &f.key,
            certs: &f.certs,
        };
        let file = key_store(&entry, compat, &pass).unwrap();
        let a = Pkcs12Archive::from_pkcs12(&file, pass.expose()).unwrap();
        assert_eq!(a.keys.len(), 1);
        assert_eq!(a.keys[0].key.as_der(), f.key.pkcs8_der());
        assert_eq!(a.keys[0].friendly_name.as_deref(), Some("node-1"));
        assert_eq!(
            a.keys[0].local_key_id.as_ref().map(|i| i.0.clone()),
            Some(id.clone())
        );
        let certs: Vec<&[u8]> = a.certs.iter().map(|c| c.cert.as_der()).collect();
        assert_eq!(certs, [f.certs[0].as_slice(), f.certs[1].as_slice()]);
        assert_eq!(a.certs[0].local_key_id.as_ref(), Some(&id));
        assert_eq!(a.certs[1].local_key_id, None);
        assert_eq!(
            a.certs[0].friendly_name.as_deref(),
            Some("CN=node.example.com")
        );
        assert_eq!(a.certs[1].friendly_name.as_deref(), Some("CN=Example CA"));
        assert!(a.certs.iter().all(|c| !c.trusted));
        let o = outline::outline(&file).unwrap();
        assert_eq!(o.mac.unwrap().algorithm, compat.mac_name());
        assert_eq!(o.content_encryption[0].algorithm, compat.encryption_name());
        assert_eq!(o.key_encryption[0].algorithm, compat.encryption_name());
    }
}

#[test]
fn p12_keystore_reads_truststores_back_in_alias_order() {
    let pass = Secret::new("changeit".into());
    let entries = trust_entries();
    for compat in MODES {
        let file = trust_store(&entries, compat, &pass).unwrap();
        let a = Pkcs12Archive::from_pkcs12(&file, pass.expose()).unwrap();
        assert!(a.keys.is_empty());
        let got: Vec<(Option<&str>, &[u8], bool)> = a
            .certs
            .iter()
            .map(|c| (c.friendly_name.as_deref(), c.cert.as_der(), c.trusted))
            .collect();
        assert_eq!(
            got,
            [
                (Some("alpha-ca"), entries[1].1.as_slice(), true),
                (Some("zeta-ca"), entries[0].1.as_slice(), true),
            ]
        );
        assert!(a.certs.iter().all(|c| c.local_key_id.is_none()));
    }
}

/// A freshly encoded keystore with its retained keys, and what it must decode to.
struct Sealed {
    fixture: Fixture,
    compat: Compat,
    encoded: encode::Encoded,
}

impl Sealed {
    fn new(compat: Compat) -> Self {
        let fixture = fixture();
        let id = crate::x509::sha1(&fixture.certs[0]);
        let key = encode::KeyBag {
            pkcs8: fixture.key.pkcs8_der(),
            friendly_name: "node",
            local_key_id: &id,
        };
        let certs: Vec<encode::CertBag<'_>> = fixture
            .certs
            .iter()
            .enumerate()
            .map(|(i, der)| encode::CertBag {
                der,
                friendly_name: None,
                local_key_id: (i == 0).then_some(id.as_slice()),
                trusted: false,
            })
            .collect();
        let pass = Secret::new("changeit".into());
        let encoded = encode::encode(Some(&key), &certs, compat.protection(), &pass).unwrap();
        Sealed {
            fixture,
            compat,
            encoded,
        }
    }

    fn verify(&self, bytes: &[u8], secrets: &kdf::Secrets) -> std::result::Result<(), String> {
        let expect = Expected {
            compat: self.compat,
            key: Some(self.fixture.key.pkcs8_der()),
            certs: &self.fixture.certs,
            trusted: 0,
        };
        verify(bytes, secrets, &expect)
    }
}

fn offset(outer: &[u8], inner: &[u8]) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

/// Where each ciphertext lies: the element right after each encryption
/// AlgorithmIdentifier (found by its OID, which random bytes do not contain).
fn ciphertexts(file: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for id in [oids::PBES2, oids::PBE_SHA1_3DES] {
        let mut needle = vec![0x06, id.as_bytes().len() as u8];
        needle.extend_from_slice(id.as_bytes());
        for pos in 2..file.len() - needle.len() {
            if file[pos..].starts_with(&needle) {
                let (_, rest) = outline::tlv(&file[pos - 2..]).unwrap();
                let (ct, _) = outline::tlv(rest).unwrap();
                let start = offset(file, ct.body);
                out.push(start..start + ct.body.len());
            }
        }
    }
    out
}

/// Ranges of the AuthenticatedSafe's content and of the MAC digest.
fn mac_ranges(file: &[u8]) -> (Range<usize>, Range<usize>) {
    use outline::{Reader, TAG_EXPLICIT_0, TAG_OCTET_STRING, TAG_SEQUENCE};
    let (pfx, _) = outline::tlv(file).unwrap();
    let mut r = Reader(pfx.body);
    r.next().unwrap();
    let mut ci = Reader(r.expect(TAG_SEQUENCE).unwrap().body);
    ci.next().unwrap();
    let auth = Reader(ci.expect(TAG_EXPLICIT_0).unwrap().body)
        .expect(TAG_OCTET_STRING)
        .unwrap()
        .body;
    let mut mac_data = Reader(r.expect(TAG_SEQUENCE).unwrap().body);
    let mut di = Reader(mac_data.expect(TAG_SEQUENCE).unwrap().body);
    di.next().unwrap();
    let digest = di.expect(TAG_OCTET_STRING).unwrap().body;
    let a = offset(file, auth);
    let d = offset(file, digest);
    (a..a + auth.len(), d..d + digest.len())
}

/// Recomputes the MAC with the retained key, so a change under it reaches decryption.
fn remac(file: &mut [u8], secrets: &kdf::Secrets) {
    let (auth, digest) = mac_ranges(file);
    let key = aws_lc_rs::hmac::Key::new(secrets.mac.digest.hmac(), &secrets.mac.key);
    let tag = aws_lc_rs::hmac::sign(&key, &file[auth]);
    file[digest].copy_from_slice(tag.as_ref());
}

#[test]
fn the_check_passes_untouched_files_without_deriving() {
    for compat in MODES {
        let s = Sealed::new(compat);
        let before = derivations();
        s.verify(&s.encoded.bytes, &s.encoded.secrets).unwrap();
        assert_eq!(derivations(), before, "verify derives nothing");
        let mut same = s.encoded.bytes.clone();
        remac(&mut same, &s.encoded.secrets);
        assert_eq!(
            same, s.encoded.bytes,
            "the test's MAC agrees with the encoder's"
        );
        assert_eq!(ciphertexts(&same).len(), 2, "certificates and key");
    }
}

#[test]
fn a_flipped_mac_byte_fails_the_check() {
    for compat in MODES {
        let s = Sealed::new(compat);
        let (_, digest) = mac_ranges(&s.encoded.bytes);
        let mut bad = s.encoded.bytes.clone();
        bad[digest.start + 3] ^= 0x01;
        let err = s.verify(&bad, &s.encoded.secrets).unwrap_err();
        assert!(err.contains("MAC check failed"), "{err}");
    }
}

#[test]
fn a_flipped_ciphertext_byte_fails_the_check() {
    for compat in MODES {
        let s = Sealed::new(compat);
        for (i, ct) in ciphertexts(&s.encoded.bytes).into_iter().enumerate() {
            for at in [ct.start, ct.start + ct.len() / 2, ct.end - 1] {
                let mut bad = s.encoded.bytes.clone();
                bad[at] ^= 0x80;
                assert!(
                    s.verify(&bad, &s.encoded.secrets).is_err(),
                    "MAC catches the change"
                );
                remac(&mut bad, &s.encoded.secrets);
                assert!(
                    s.verify(&bad, &s.encoded.secrets).is_err(),
                    "{compat:?}: ciphertext {i} changed at {at} still passed"
                );
            }
        }
    }
}

/// Changes one retained secret.
type Spoil = fn(&mut kdf::Secrets);

#[test]
fn a_wrong_retained_key_fails_the_check() {
    for compat in MODES {
        let s = Sealed::new(compat);
        // Not a key byte's low bit: DES ignores it (parity), so 3DES would not notice.
        let cases: [(&str, Spoil); 4] = [
            ("MAC key", |k| k.mac.key[0] ^= 0x80),
            ("certificates' key", |k| k.bags[0].key[5] ^= 0x80),
            ("private key's key", |k| k.bags[1].key[5] ^= 0x80),
            ("salt", |k| k.bags[1].salt[0] ^= 1),
        ];
        for (what, spoil) in cases {
            let mut secrets = kdf::Secrets {
                mac: clone_mac(&s.encoded.secrets.mac),
                bags: s.encoded.secrets.bags.iter().map(clone_bag).collect(),
            };
            spoil(&mut secrets);
            assert!(
                s.verify(&s.encoded.bytes, &secrets).is_err(),
                "{compat:?}: a wrong {what} passed"
            );
        }
    }
}

fn clone_mac(m: &kdf::MacKey) -> kdf::MacKey {
    kdf::MacKey {
        digest: m.digest,
        salt: m.salt.clone(),
        iterations: m.iterations,
        key: m.key.clone(),
    }
}

fn clone_bag(b: &kdf::BagKey) -> kdf::BagKey {
    kdf::BagKey {
        cipher: b.cipher,
        salt: b.salt.clone(),
        iterations: b.iterations,
        key: b.key.clone(),
        derived_iv: b.derived_iv.clone(),
    }
}
