//! CA keys that never leave a PKCS#11 token (an HSM, a smart card, SoftHSM).
//!
//! The key is generated inside the token as sensitive and non-extractable, or an
//! existing pair there is adopted; certmesh keeps only the RFC 7512 URI that names it
//! and the module path. Only CA signatures go to the token: member keys stay in
//! software, made in parallel.
//!
//! A module is loaded and initialized once per process, and one logged-in session per
//! token serves every signature of the run (behind a mutex: a PKCS#11 session is not
//! meant for two threads at once), so the PIN is presented once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::{ObjectIdentifier, OctetString, UintRef};
use der::{Decode, Encode};
use rcgen::{PublicKeyData, SignatureAlgorithm};

use super::{Digest, KeyAlg};
use crate::pass::Secret;
use crate::x509::{Curve, KeyDesc, KeyType as PublicKeyType};
use crate::{Error, Result};

const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Where a CA key lives in a token: the RFC 7512 URI and the module that reaches it.
/// This is what `store.toml` records; the PIN never is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    pub uri: String,
    pub module: PathBuf,
}

impl TokenRef {
    /// Checks the URI and settles the module: `--module`, else the URI's `module-path`.
    pub fn new(uri: &str, module: Option<&Path>) -> Result<Self> {
        let parsed = Pkcs11Uri::parse(uri)?;
        let module = match (module, &parsed.module_path) {
            (Some(m), _) => m.to_path_buf(),
            (None, Some(m)) => m.clone(),
            (None, None) => {
                return Err(Error::Usage(format!(
                    "{uri}: no PKCS#11 module given (--module PATH, or module-path= in the URI)"
                )))
            }
        };
        Ok(TokenRef {
            uri: uri.to_string(),
            module,
        })
    }

    /// The same token and module, for another object: what a new authority of the
    /// store (an intermediate, a rolled-over root) gets when its parent lives in a token.
    pub fn sibling(&self, suffix: &str) -> Result<Self> {
        let uri = Pkcs11Uri::parse(&self.uri)?;
        let object = uri.object.as_deref().unwrap_or("certmesh-ca");
        let mut path: Vec<String> = self
            .uri
            .trim_start_matches("pkcs11:")
            .split('?')
            .next()
            .unwrap_or("")
            .split(';')
            .filter(|a| !a.is_empty() && !a.starts_with("object=") && !a.starts_with("id="))
            .map(str::to_string)
            .collect();
        path.push(format!(
            "object={}",
            pct_encode(&format!("{object}-{suffix}"))
        ));
        let query = self.uri.split_once('?').map(|(_, q)| q);
        let uri = match query {
            Some(q) => format!("pkcs11:{}?{q}", path.join(";")),
            None => format!("pkcs11:{}", path.join(";")),
        };
        Ok(TokenRef {
            uri,
            module: self.module.clone(),
        })
    }
}

/// The parts of an RFC 7512 `pkcs11:` URI certmesh uses to find a token and a key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub module_path: Option<PathBuf>,
}

impl Pkcs11Uri {
    /// Parses the URI. A PIN inside it (`pin-value`) is refused: it would sit in shell
    /// history, the process list and `store.toml`.
    pub fn parse(uri: &str) -> Result<Self> {
        let shown = redact_pin(uri);
        let bad = |why: &str| Error::Usage(format!("{shown}: not a usable PKCS#11 URI: {why}"));
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it must start with 'pkcs11:'"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| bad(&format!("'{attr}' has no '='")))?;
            let v = pct_decode(v).ok_or_else(|| bad(&format!("bad %-escape in '{attr}'")))?;
            let text =
                || String::from_utf8(v.clone()).map_err(|_| bad(&format!("'{k}' is not UTF-8")));
            match k {
                "token" => out.token = Some(text()?),
                "manufacturer" => out.manufacturer = Some(text()?),
                "serial" => out.serial = Some(text()?),
                "model" => out.model = Some(text()?),
                "object" => out.object = Some(text()?),
                "id" => out.id = Some(v),
                "slot-id" => {
                    out.slot_id = Some(
                        text()?
                            .parse()
                            .map_err(|_| bad("slot-id is not a number"))?,
                    )
                }
                // Attributes that narrow a search certmesh does itself, or that name
                // the library: accepted, not needed.
                "type"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-manufacturer"
                | "slot-description" => {}
                _ => return Err(bad(&format!("unknown attribute '{k}'"))),
            }
        }
        for attr in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|a| !a.is_empty())
        {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| bad(&format!("'{attr}' has no '='")))?;
            let v = pct_decode(v).ok_or_else(|| bad(&format!("bad %-escape in '{attr}'")))?;
            match k {
                "module-path" => {
                    out.module_path = Some(PathBuf::from(
                        String::from_utf8(v).map_err(|_| bad("module-path is not UTF-8"))?,
                    ))
                }
                "pin-value" | "pin-source" => {
                    return Err(bad(
                        "a PIN does not belong in the URI; give it with --pin (env:VAR, file:PATH, fd:N, or the prompt)",
                    ))
                }
                "module-name" => {}
                _ => return Err(bad(&format!("unknown query attribute '{k}'"))),
            }
        }
        if out.object.is_none() && out.id.is_none() {
            return Err(bad("name the key with object=LABEL (or id=...)"));
        }
        Ok(out)
    }
}

/// The URI with any `pin-value` masked, for messages.
fn redact_pin(uri: &str) -> String {
    match uri.split_once('?') {
        None => uri.to_string(),
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|a| {
                    if a.starts_with("pin-value=") {
                        "pin-value=***".to_string()
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
    }
}

fn pct_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}

/// One logged-in session on a token, shared by every key of the run on that token.
struct TokenSession {
    module: PathBuf,
    slot: u64,
    session: Mutex<Session>,
}

/// Loaded modules and open sessions of this process.
#[derive(Default)]
struct Registry {
    modules: Vec<(PathBuf, Pkcs11)>,
    sessions: Vec<Arc<TokenSession>>,
}

fn registry() -> &'static Mutex<Registry> {
    static REG: OnceLock<Mutex<Registry>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

fn module_context(reg: &mut Registry, module: &Path) -> Result<Pkcs11> {
    if let Some((_, ctx)) = reg.modules.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    if !module.is_file() {
        return Err(Error::bad_file(module, "PKCS#11 module not found"));
    }
    // A statically linked program cannot load shared objects (glibc's dlopen needs the
    // dynamic loader it was built without): refuse instead of crashing in the module.
    if cfg!(target_feature = "crt-static") {
        return Err(Error::Refused(format!(
            "{}: this certmesh is statically linked and cannot load PKCS#11 modules; use a dynamically linked build (cargo install --path .)",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        Error::bad_file(
            module,
            format!("cannot load this PKCS#11 module: {}", ck_text(&e)),
        )
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Error::bad_file(
                module,
                format!("the PKCS#11 module failed to initialize: {}", ck_text(&e)),
            ))
        }
    }
    reg.modules.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// Finds the slot whose token the URI names.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri, text: &str) -> Result<Slot> {
    let slots = ctx.get_slots_with_token().map_err(|e| {
        Error::Crypto(format!(
            "{text}: cannot list the token slots: {}",
            ck_text(&e)
        ))
    })?;
    let mut labels = Vec::new();
    for slot in slots {
        if uri.slot_id.is_some_and(|id| id != slot.id()) {
            continue;
        }
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        labels.push(info.label().trim().to_string());
        let matches = uri
            .token
            .as_deref()
            .is_none_or(|t| info.label().trim() == t)
            && uri
                .serial
                .as_deref()
                .is_none_or(|s| info.serial_number().trim() == s)
            && uri
                .manufacturer
                .as_deref()
                .is_none_or(|m| info.manufacturer_id().trim() == m)
            && uri
                .model
                .as_deref()
                .is_none_or(|m| info.model().trim() == m);
        if matches && info.token_initialized() {
            return Ok(slot);
        }
    }
    Err(Error::Crypto(format!(
        "{text}: token not present (tokens found: {})",
        if labels.is_empty() {
            "none".to_string()
        } else {
            labels.join(", ")
        }
    )))
}

/// Opens (or reuses) the logged-in session for the token a URI names.
fn session_for(token: &TokenRef, uri: &Pkcs11Uri, pin: &Secret) -> Result<Arc<TokenSession>> {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let ctx = module_context(&mut reg, &token.module)?;
    let slot = find_slot(&ctx, uri, &token.uri)?;
    if let Some(s) = reg
        .sessions
        .iter()
        .find(|s| s.module == token.module && s.slot == slot.id())
    {
        return Ok(s.clone());
    }
    let session = ctx.open_rw_session(slot).map_err(|e| {
        Error::Crypto(format!(
            "{}: cannot open a session: {}",
            token.uri,
            ck_text(&e)
        ))
    })?;
    let auth = AuthPin::from(pin.expose().to_string());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            let left = ctx
                .get_token_info(slot)
                .map(|i| {
                    if i.user_pin_locked() {
                        " (the PIN is now locked)"
                    } else if i.user_pin_final_try() {
                        " (one try left before the PIN locks)"
                    } else if i.user_pin_count_low() {
                        " (few tries left before the PIN locks)"
                    } else {
                        ""
                    }
                })
                .unwrap_or("");
            return Err(Error::Secret(format!(
                "{}: wrong PIN for the token{left}",
                token.uri
            )));
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
            return Err(Error::Secret(format!(
                "{}: the token's user PIN is locked",
                token.uri
            )))
        }
        Err(e) => {
            return Err(Error::Secret(format!(
                "{}: login to the token failed: {}",
                token.uri,
                ck_text(&e)
            )))
        }
    }
    let s = Arc::new(TokenSession {
        module: token.module.clone(),
        slot: slot.id(),
        session: Mutex::new(session),
    });
    reg.sessions.push(s.clone());
    Ok(s)
}

/// How the token signs for one key type.
#[derive(Debug, Clone, Copy)]
enum Scheme {
    /// CKM_SHA*_RSA_PKCS: the token hashes and pads.
    Rsa(Digest),
    /// CKM_ECDSA over a digest made here; the token returns r || s.
    Ecdsa {
        digest: &'static aws_lc_rs::digest::Algorithm,
        half: usize,
    },
}

/// A CA key inside a token, usable wherever rcgen wants a signing key.
#[derive(Clone)]
pub struct TokenKey {
    session: Arc<TokenSession>,
    handle: ObjectHandle,
    token: TokenRef,
    alg: &'static SignatureAlgorithm,
    scheme: Scheme,
    /// subjectPublicKey bits (PKCS#1 RSAPublicKey, or the EC point).
    public_bits: Vec<u8>,
    desc: KeyDesc,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({}, {})", self.token.uri, self.desc)
    }
}

/// What [`TokenKey::generate_or_adopt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOutcome {
    Generated,
    Adopted,
}

impl TokenKey {
    /// Opens the key pair the URI names, for signing.
    pub fn open(token: &TokenRef, pin: &Secret, digest: Digest) -> Result<Self> {
        let uri = Pkcs11Uri::parse(&token.uri)?;
        let session = session_for(token, &uri, pin)?;
        Self::find(session, token, &uri, digest)?
            .ok_or_else(|| Error::Crypto(format!("{}: key not found in the token", token.uri)))
    }

    /// Generates the key pair inside the token (sensitive, never extractable), or adopts
    /// the pair already there under the URI's label/id.
    pub fn generate_or_adopt(
        token: &TokenRef,
        pin: &Secret,
        alg: KeyAlg,
        digest: Digest,
    ) -> Result<(Self, TokenOutcome)> {
        let uri = Pkcs11Uri::parse(&token.uri)?;
        let session = session_for(token, &uri, pin)?;
        if let Some(key) = Self::find(session.clone(), token, &uri, digest)? {
            return Ok((key, TokenOutcome::Adopted));
        }
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; 16];
                aws_lc_rs::rand::fill(&mut id)
                    .map_err(|_| Error::Crypto("no random bytes for the key id".into()))?;
                id
            }
        };
        let label = uri.object.clone().unwrap_or_else(|| hex::encode(&id));
        let (mech, mut public, mech_type) = match alg {
            KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096 => {
                let bits: u64 = match alg {
                    KeyAlg::Rsa2048 => 2048,
                    KeyAlg::Rsa3072 => 3072,
                    _ => 4096,
                };
                (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(bits.into()),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    ],
                    MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                )
            }
            KeyAlg::P256 | KeyAlg::P384 => {
                let oid = if alg == KeyAlg::P256 {
                    OID_P256
                } else {
                    OID_P384
                };
                let params = oid
                    .to_der()
                    .map_err(|_| Error::Crypto("cannot encode the curve".into()))?;
                (
                    Mechanism::EccKeyPairGen,
                    vec![Attribute::EcParams(params)],
                    MechanismType::ECC_KEY_PAIR_GEN,
                )
            }
            KeyAlg::Ed25519 => return Err(Error::Usage(
                "a token-held CA key must be RSA (rsa2048, rsa3072, rsa4096) or ECDSA (p256, p384)"
                    .into(),
            )),
        };
        public.extend([
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(id.clone()),
        ]);
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            // A CA key signs and does nothing else.
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.into_bytes()),
            Attribute::Id(id),
        ];
        {
            let s = session.session.lock().unwrap_or_else(|e| e.into_inner());
            require_mechanism(&s, token, mech_type)?;
            s.generate_key_pair(&mech, &public, &private).map_err(|e| {
                Error::Crypto(format!(
                    "{}: the token could not generate the key: {}",
                    token.uri,
                    ck_text(&e)
                ))
            })?;
        }
        let key = Self::find(session, token, &uri, digest)?.ok_or_else(|| {
            Error::Crypto(format!(
                "{}: the generated key cannot be found again",
                token.uri
            ))
        })?;
        Ok((key, TokenOutcome::Generated))
    }

    fn find(
        session: Arc<TokenSession>,
        token: &TokenRef,
        uri: &Pkcs11Uri,
        digest: Digest,
    ) -> Result<Option<Self>> {
        let ck = |what: &str, e: CkError| {
            Error::Crypto(format!("{}: {what}: {}", token.uri, ck_text(&e)))
        };
        let mut template = Vec::new();
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.clone().into_bytes()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let s = session.session.lock().unwrap_or_else(|e| e.into_inner());
        let mut priv_t = template.clone();
        priv_t.push(Attribute::Class(ObjectClass::PRIVATE_KEY));
        let privs = s
            .find_objects(&priv_t)
            .map_err(|e| ck("cannot search the token", e))?;
        let handle = match privs.as_slice() {
            [] => return Ok(None),
            [h] => *h,
            _ => {
                return Err(Error::Crypto(format!(
                    "{}: {} private keys match; name one with id=",
                    token.uri,
                    privs.len()
                )))
            }
        };
        let attrs = s
            .get_attributes(handle, &[AttributeType::KeyType, AttributeType::Id])
            .map_err(|e| ck("cannot read the key's attributes", e))?;
        let mut key_type = None;
        let mut id = None;
        for a in attrs {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::Id(i) => id = Some(i),
                _ => {}
            }
        }
        // The public half: from the public-key object of the same id, else (RSA) from
        // the private key's public attributes.
        let mut pub_t = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        match &id {
            Some(id) => pub_t.push(Attribute::Id(id.clone())),
            None => pub_t.extend(template.iter().cloned()),
        }
        let public = s
            .find_objects(&pub_t)
            .map_err(|e| ck("cannot search the token", e))?
            .first()
            .copied();
        let (alg, scheme, public_bits, desc) = match key_type {
            Some(KeyType::RSA) => {
                let from = public.unwrap_or(handle);
                let attrs = s
                    .get_attributes(from, &[AttributeType::Modulus, AttributeType::PublicExponent])
                    .map_err(|e| ck("cannot read the RSA public key", e))?;
                let (mut n, mut e) = (Vec::new(), Vec::new());
                for a in attrs {
                    match a {
                        Attribute::Modulus(m) => n = m,
                        Attribute::PublicExponent(x) => e = x,
                        _ => {}
                    }
                }
                let bits = rsa_bits(&n);
                let der = pkcs1::RsaPublicKeyRef {
                    modulus: UintRef::new(&n)
                        .map_err(|_| Error::Crypto(format!("{}: bad RSA modulus", token.uri)))?,
                    public_exponent: UintRef::new(&e)
                        .map_err(|_| Error::Crypto(format!("{}: bad RSA exponent", token.uri)))?,
                }
                .to_der()
                .map_err(|_| Error::Crypto(format!("{}: bad RSA public key", token.uri)))?;
                if bits < crate::x509::MIN_RSA_BITS {
                    return Err(Error::Refused(format!(
                        "{}: RSA-{bits} keys are too weak to sign with (at least 2048 bits are needed)",
                        token.uri
                    )));
                }
                let (alg, mech): (&'static SignatureAlgorithm, MechanismType) = match digest {
                    Digest::Sha256 => (&rcgen::PKCS_RSA_SHA256, MechanismType::SHA256_RSA_PKCS),
                    Digest::Sha384 => (&rcgen::PKCS_RSA_SHA384, MechanismType::SHA384_RSA_PKCS),
                    Digest::Sha512 => (&rcgen::PKCS_RSA_SHA512, MechanismType::SHA512_RSA_PKCS),
                };
                require_mechanism(&s, token, mech)?;
                (
                    alg,
                    Scheme::Rsa(digest),
                    der,
                    KeyDesc {
                        kind: PublicKeyType::Rsa,
                        bits,
                        curve: None,
                    },
                )
            }
            Some(KeyType::EC) => {
                let public = public.ok_or_else(|| {
                    Error::Crypto(format!(
                        "{}: the token holds no public key object for this EC key",
                        token.uri
                    ))
                })?;
                let attrs = s
                    .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
                    .map_err(|e| ck("cannot read the EC public key", e))?;
                let (mut params, mut point) = (Vec::new(), Vec::new());
                for a in attrs {
                    match a {
                        Attribute::EcParams(p) => params = p,
                        Attribute::EcPoint(p) => point = p,
                        _ => {}
                    }
                }
                let curve = ObjectIdentifier::from_der(&params).ok();
                let (alg, digest, half, name): (&'static SignatureAlgorithm, _, usize, _) =
                    match curve {
                        Some(c) if c == OID_P256 => (
                            &rcgen::PKCS_ECDSA_P256_SHA256,
                            &aws_lc_rs::digest::SHA256,
                            32,
                            Curve::P256,
                        ),
                        Some(c) if c == OID_P384 => (
                            &rcgen::PKCS_ECDSA_P384_SHA384,
                            &aws_lc_rs::digest::SHA384,
                            48,
                            Curve::P384,
                        ),
                        _ => {
                            return Err(Error::Crypto(format!(
                                "{}: the key's curve is not P-256 or P-384",
                                token.uri
                            )))
                        }
                    };
                // CKA_EC_POINT is the point wrapped in an OCTET STRING (PKCS#11 2.40);
                // a few tokens give the bare point.
                let raw = match OctetString::from_der(&point) {
                    Ok(os) if os.as_bytes().len() == 1 + 2 * half => os.as_bytes().to_vec(),
                    _ => point,
                };
                if raw.len() != 1 + 2 * half || raw[0] != 4 {
                    return Err(Error::Crypto(format!(
                        "{}: the token's EC point is not an uncompressed {name} point",
                        token.uri
                    )));
                }
                require_mechanism(&s, token, MechanismType::ECDSA)?;
                (
                    alg,
                    Scheme::Ecdsa { digest, half },
                    raw,
                    KeyDesc {
                        kind: PublicKeyType::Ec,
                        bits: (half * 8) as u32,
                        curve: Some(name),
                    },
                )
            }
            _ => {
                return Err(Error::Crypto(format!(
                    "{}: the key is neither RSA nor EC; certmesh signs with RSA or ECDSA keys in tokens",
                    token.uri
                )))
            }
        };
        drop(s);
        Ok(Some(TokenKey {
            session,
            handle,
            token: token.clone(),
            alg,
            scheme,
            public_bits,
            desc,
        }))
    }

    /// The key's SubjectPublicKeyInfo, DER: what a certificate for it must carry.
    pub fn spki(&self) -> Vec<u8> {
        self.subject_public_key_info()
    }

    /// Where the key lives.
    pub fn token_ref(&self) -> &TokenRef {
        &self.token
    }

    /// Type and size.
    pub fn describe(&self) -> &KeyDesc {
        &self.desc
    }

    /// The private key's protection as the token reports it: (sensitive, extractable).
    pub fn protection(&self) -> Result<(bool, bool)> {
        let s = self
            .session
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let attrs = s
            .get_attributes(
                self.handle,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(|e| Error::Crypto(format!("{}: {}", self.token.uri, ck_text(&e))))?;
        let (mut sensitive, mut extractable) = (false, true);
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok((sensitive, extractable))
    }
}

fn require_mechanism(s: &Session, token: &TokenRef, mech: MechanismType) -> Result<()> {
    let info = s
        .get_session_info()
        .map_err(|e| Error::Crypto(format!("{}: {}", token.uri, ck_text(&e))))?;
    let slot = info.slot_id();
    let ctx = {
        let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        reg.modules
            .iter()
            .find(|(p, _)| *p == token.module)
            .map(|(_, c)| c.clone())
    };
    let Some(ctx) = ctx else { return Ok(()) };
    let list = ctx
        .get_mechanism_list(slot)
        .map_err(|e| Error::Crypto(format!("{}: {}", token.uri, ck_text(&e))))?;
    if list.contains(&mech) {
        Ok(())
    } else {
        Err(Error::Crypto(format!(
            "{}: the token does not support the mechanism {mech}",
            token.uri
        )))
    }
}

fn rsa_bits(n: &[u8]) -> u32 {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() * 8) as u32 - n[0].leading_zeros()
}

/// cryptoki's error as one line ("CKR_PIN_INCORRECT", not a debug dump).
fn ck_text(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => format!("{rv}"),
        other => other.to_string().lines().next().unwrap_or("").to_string(),
    }
}

impl PublicKeyData for TokenKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_bits
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl rcgen::SigningKey for TokenKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let s = self
            .session
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match self.scheme {
            Scheme::Rsa(d) => {
                let mech = match d {
                    Digest::Sha256 => Mechanism::Sha256RsaPkcs,
                    Digest::Sha384 => Mechanism::Sha384RsaPkcs,
                    Digest::Sha512 => Mechanism::Sha512RsaPkcs,
                };
                s.sign(&mech, self.handle, msg).map_err(|e| self.failed(&e))
            }
            Scheme::Ecdsa { digest, half } => {
                let hash = aws_lc_rs::digest::digest(digest, msg);
                let rs = s
                    .sign(&Mechanism::Ecdsa, self.handle, hash.as_ref())
                    .map_err(|e| self.failed(&e))?;
                ecdsa_der(&rs, half).ok_or_else(|| {
                    crate::error::set_remote_signer_error(format!(
                        "{}: the token returned a malformed ECDSA signature",
                        self.token.uri
                    ));
                    rcgen::Error::RemoteKeyError
                })
            }
        }
    }
}

impl TokenKey {
    /// Leaves the token's reason for the caller's error (the token removed, the session
    /// closed) and returns rcgen's opaque error.
    fn failed(&self, e: &CkError) -> rcgen::Error {
        crate::error::set_remote_signer_error(format!(
            "{}: the token did not sign: {}",
            self.token.uri,
            ck_text(e)
        ));
        rcgen::Error::RemoteKeyError
    }
}

/// PKCS#11 returns an ECDSA signature as r || s; X.509 wants the DER ECDSA-Sig-Value.
fn ecdsa_der(rs: &[u8], half: usize) -> Option<Vec<u8>> {
    if rs.len() != 2 * half {
        return None;
    }
    let seq: Vec<UintRef<'_>> = vec![
        UintRef::new(&rs[..half]).ok()?,
        UintRef::new(&rs[half..]).ok()?,
    ];
    seq.to_der().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts_and_refusals() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=My%20CA;object=root;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("My CA"));
        assert_eq!(u.object.as_deref(), Some("root"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(
            u.module_path.as_deref(),
            Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        for bad in [
            "token=x;object=y",
            "pkcs11:token=x",
            "pkcs11:token=x;object=y?pin-value=1234",
            "pkcs11:token=x;object=%zz",
            "pkcs11:token=x;object=y;color=red",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad} accepted");
        }
        let pin = Pkcs11Uri::parse("pkcs11:object=y?pin-value=1234").unwrap_err();
        assert!(!pin.to_string().contains("1234"), "{pin}");
    }

    #[test]
    fn sibling_keeps_the_token_and_renames_the_object() {
        let t = TokenRef::new(
            "pkcs11:token=ca;object=root%20key;id=%01",
            Some(Path::new("/m.so")),
        )
        .unwrap();
        let s = t.sibling("intermediate").unwrap();
        let u = Pkcs11Uri::parse(&s.uri).unwrap();
        assert_eq!(u.token.as_deref(), Some("ca"));
        assert_eq!(u.object.as_deref(), Some("root key-intermediate"));
        assert_eq!(u.id, None);
        assert_eq!(s.module, Path::new("/m.so"));
    }

    #[test]
    fn ecdsa_signature_from_r_and_s() {
        // r with its top bit set needs a leading zero; s with leading zeros loses them.
        let mut rs = vec![0u8; 64];
        rs[0] = 0x80;
        rs[63] = 1;
        let der = ecdsa_der(&rs, 32).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(der[4], 0);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
        assert!(ecdsa_der(&rs[..63], 32).is_none());
    }

    #[test]
    fn module_missing_is_one_line() {
        let t = TokenRef::new(
            "pkcs11:token=x;object=y",
            Some(Path::new("/nonexistent/p11.so")),
        )
        .unwrap();
        let e = TokenKey::open(&t, &Secret::new("1234".into()), Digest::Sha256).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/p11.so: PKCS#11 module not found"
        );
    }
}
