//! One TLS handshake with rustls (aws-lc-rs provider) that records what the server sent
//! instead of judging it.
//!
//! rustls's own verifier would stop at the first problem with an enum value; certmesh
//! wants the whole served chain, so it can describe it and judge it with its own
//! `verify` (the same rules as `certmesh verify`). The recording verifier accepts any
//! chain, but the handshake signatures are still checked against the served leaf's key,
//! so what is recorded is what the peer holds the key for.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{
    aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider,
    WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
};

/// A client certificate to present: the chain (leaf first) and its key as PKCS#8 DER.
pub struct Identity {
    pub chain: Vec<Vec<u8>>,
    pub pkcs8: zeroize::Zeroizing<Vec<u8>>,
}

/// What a completed handshake showed.
#[derive(Debug, Default)]
pub struct Handshake {
    /// The address connected to.
    pub address: String,
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: String,
    /// IANA name of the cipher suite.
    pub cipher_suite: String,
    /// Leaf first, as the server sent them (DER).
    pub chain: Vec<Vec<u8>>,
    /// The server sent a CertificateRequest.
    pub client_cert_requested: bool,
    /// A client certificate was sent in answer.
    pub client_cert_sent: bool,
    /// With a client certificate requested: the server refused the connection after the
    /// handshake (TLS 1.3 alert or an HTTP error naming the certificate).
    pub refused: Option<String>,
}

/// Why no handshake completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No TCP connection (DNS, refused, unreachable, connect timeout).
    Connect(String),
    /// Connected, but no usable TLS session.
    Tls(String),
}

/// Connects to `host:port` and completes a TLS handshake within `timeout`.
pub fn handshake(
    host: &str,
    port: u16,
    sni: Option<&str>,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<Handshake, Failure> {
    let deadline = Instant::now() + timeout;
    let (mut sock, addr) = connect(host, port, timeout)?;
    let provider = Arc::new(aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder {
        algs: provider.signature_verification_algorithms,
        chain: Mutex::new(Vec::new()),
    });
    let client = Arc::new(ClientAuth::new(identity, &provider)?);
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| Failure::Tls(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_client_cert_resolver(client.clone());
    // Without SNI (an IP address), rustls still needs a name; it sends none for IPs.
    let name = match sni {
        Some(s) => ServerName::try_from(s.to_string())
            .map_err(|_| Failure::Tls(format!("invalid server name '{s}'")))?,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Failure::Tls(format!("TLS setup: {e}")))?;
    let mut tap = Tap {
        sock: &mut sock,
        first: Vec::new(),
    };
    while conn.is_handshaking() {
        step(&mut conn, &mut tap, deadline, timeout, &client)?;
    }
    let mut hs = Handshake {
        address: addr.to_string(),
        protocol: conn
            .protocol_version()
            .map(protocol_name)
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or_default()
            .to_string(),
        chain: std::mem::take(&mut *recorder.chain.lock().expect("not poisoned")),
        client_cert_requested: client.asked.load(Ordering::Relaxed),
        client_cert_sent: client.asked.load(Ordering::Relaxed) && client.key.is_some(),
        refused: None,
    };
    if hs.client_cert_requested {
        hs.refused = after_client_auth(&mut conn, &mut tap, host, deadline, timeout, &client)?;
    }
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tap);
    Ok(hs)
}

/// `TLSv1.3` rather than rustls's `TLSv1_3`.
fn protocol_name(v: rustls::ProtocolVersion) -> String {
    format!("{v:?}").replace('_', ".")
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<(TcpStream, SocketAddr), Failure> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Failure::Connect(format!("cannot resolve {host}: {}", io_text(&e))))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok((s, *addr));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::Connect(match last {
        Some(e) if is_timeout(&e) => format!("timed out connecting after {}", secs(timeout)),
        Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => "connection refused".into(),
        Some(e) => io_text(&e),
        None => format!("{host} has no address"),
    }))
}

/// One round of reading and writing during the handshake, with the time left.
fn step(
    conn: &mut ClientConnection,
    tap: &mut Tap<'_>,
    deadline: Instant,
    timeout: Duration,
    client: &ClientAuth,
) -> Result<(), Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::Tls(format!(
            "timed out waiting for the TLS handshake after {}",
            secs(timeout)
        )));
    }
    let _ = tap.sock.set_read_timeout(Some(left));
    let _ = tap.sock.set_write_timeout(Some(left));
    match conn.complete_io(tap) {
        Ok((0, 0)) if conn.is_handshaking() && !conn.wants_write() => Err(closed(tap)),
        Ok(_) => Ok(()),
        Err(e) => Err(classify(&e, tap, timeout, client)),
    }
}

/// With a client certificate asked for, servers refuse a missing or unacceptable one in
/// two ways: a TLS alert right after the client's Finished (in TLS 1.3 the client's
/// handshake is already complete then), or, as nginx does for `ssl_verify_client on`, an
/// HTTP error on the first request. So the probe first listens briefly for an alert, then
/// sends one `GET /` and reads the answer: every profile certmesh ships is an HTTPS
/// server, and a service that is not closes or answers something else, which counts as
/// accepted.
fn after_client_auth(
    conn: &mut ClientConnection,
    tap: &mut Tap<'_>,
    host: &str,
    deadline: Instant,
    timeout: Duration,
    client: &ClientAuth,
) -> Result<Option<String>, Failure> {
    let refused =
        |e: &io::Error, tap: &Tap<'_>| tls_error(e).map(|_| classify_text(e, tap, timeout, client));
    // An alert comes at once; session tickets may come first.
    let listen_until = Instant::now() + Duration::from_millis(300);
    loop {
        let left = listen_until
            .min(deadline)
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = tap.sock.set_read_timeout(Some(left));
        match conn.complete_io(tap) {
            Ok((0, 0)) => return Ok(None),
            Ok(_) => {}
            Err(e) => match refused(&e, tap) {
                Some(why) => return Ok(Some(why)),
                None if is_timeout(&e) => break,
                None => return Ok(None),
            },
        }
    }
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if conn.writer().write_all(req.as_bytes()).is_err() {
        return Ok(None);
    }
    let answer_until = (Instant::now() + Duration::from_secs(2)).min(deadline);
    let mut got = Vec::new();
    loop {
        let left = answer_until.saturating_duration_since(Instant::now());
        if left.is_zero() || got.len() > 4096 {
            break;
        }
        let _ = tap.sock.set_read_timeout(Some(left));
        let _ = tap.sock.set_write_timeout(Some(left));
        let io = conn.complete_io(tap);
        let mut buf = [0u8; 4096];
        let mut eof = false;
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        match io {
            Ok((0, 0)) => break,
            Ok(_) if eof => break,
            Ok(_) => {}
            Err(e) => {
                if let Some(why) = refused(&e, tap) {
                    return Ok(Some(why));
                }
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    let status = text.lines().next().unwrap_or("").trim();
    let code = status.split_whitespace().nth(1).unwrap_or("");
    // nginx answers 400 with the text of its 495/496 pages.
    let about_cert = text.to_ascii_lowercase().contains("certificate");
    if matches!(code, "495" | "496") || (code == "400" && about_cert) {
        let why = if client.key.is_some() {
            "the server refused the client certificate"
        } else {
            "the server requires a client certificate (give --client-cert)"
        };
        // nginx names the reason in the page title: "400 No required SSL certificate
        // was sent".
        let reason = text
            .split_once("<title>")
            .and_then(|(_, t)| t.split_once("</title>"))
            .map(|(t, _)| t.trim_start_matches(|c: char| c.is_ascii_digit()).trim())
            .filter(|t| !t.is_empty())
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        return Ok(Some(format!("{why}: HTTP {code}{reason}")));
    }
    Ok(None)
}

fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

fn classify(e: &io::Error, tap: &Tap<'_>, timeout: Duration, client: &ClientAuth) -> Failure {
    Failure::Tls(classify_text(e, tap, timeout, client))
}

/// One line for a failed handshake.
fn classify_text(e: &io::Error, tap: &Tap<'_>, timeout: Duration, client: &ClientAuth) -> String {
    if let Some(t) = tls_error(e) {
        return match t {
            rustls::Error::AlertReceived(a) => alert_text(*a, client),
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
                if !looks_like_tls(&tap.first) =>
            {
                not_tls(&tap.first)
            }
            rustls::Error::PeerIncompatible(p) => {
                let s = format!("{p:?}");
                if s.contains("Tls12") || s.contains("Version") {
                    "protocol too old: the server offers no TLS 1.2 or 1.3".into()
                } else {
                    format!("the server is incompatible: {t}")
                }
            }
            other => format!("TLS handshake failed: {other}"),
        };
    }
    if is_timeout(e) {
        return format!(
            "timed out waiting for the TLS handshake after {}",
            secs(timeout)
        );
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return closed_text(tap);
    }
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        return closed_text(tap);
    }
    format!("TLS handshake failed: {}", io_text(e))
}

fn alert_text(a: AlertDescription, client: &ClientAuth) -> String {
    let name = format!("{a:?}");
    let asked = client.asked.load(Ordering::Relaxed);
    match a {
        AlertDescription::ProtocolVersion => {
            format!("protocol too old: the server refused TLS 1.2 and 1.3 (alert {name})")
        }
        AlertDescription::CertificateRequired
        | AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::HandshakeFailure
            if asked && client.key.is_none() =>
        {
            format!(
                "the server requires a client certificate (give --client-cert): TLS alert {name}"
            )
        }
        _ if asked && client.key.is_some() => {
            format!("the server refused the client certificate: TLS alert {name}")
        }
        _ => format!("the server ended the handshake with TLS alert {name}"),
    }
}

fn closed(tap: &Tap<'_>) -> Failure {
    Failure::Tls(closed_text(tap))
}

fn closed_text(tap: &Tap<'_>) -> String {
    if tap.first.is_empty() {
        "the server closed the connection without a TLS handshake".into()
    } else if !looks_like_tls(&tap.first) {
        not_tls(&tap.first)
    } else {
        "the server closed the connection during the TLS handshake".into()
    }
}

/// A TLS record starts with a content type (20..=24) and major version 3.
fn looks_like_tls(first: &[u8]) -> bool {
    first.is_empty() || (matches!(first[0], 20..=24) && first.get(1).is_none_or(|v| *v == 3))
}

fn not_tls(first: &[u8]) -> String {
    if first.starts_with(b"HTTP/") {
        "not TLS: the server answered in plain HTTP".into()
    } else {
        let shown: String = first
            .iter()
            .take(16)
            .map(|b| {
                if b.is_ascii_graphic() || *b == b' ' {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect();
        format!("not TLS: the server answered '{shown}'")
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn io_text(e: &io::Error) -> String {
    // "Connection refused (os error 111)" -> "connection refused".
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The socket, remembering the first bytes the server sent (to tell plain HTTP or
/// another protocol from TLS).
struct Tap<'a> {
    sock: &'a mut TcpStream,
    first: Vec<u8>,
}

impl Read for Tap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        if self.first.len() < 16 {
            let take = (16 - self.first.len()).min(n);
            self.first.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl Write for Tap<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Accepts any chain and keeps it; checks the handshake signatures with the leaf's key.
#[derive(Debug)]
struct Recorder {
    algs: WebPkiSupportedAlgorithms,
    chain: Mutex<Vec<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.to_vec()];
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        *self.chain.lock().expect("not poisoned") = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Answers a CertificateRequest with the identity, if there is one, and notes that the
/// server asked.
#[derive(Debug)]
struct ClientAuth {
    key: Option<Arc<CertifiedKey>>,
    asked: AtomicBool,
}

impl ClientAuth {
    fn new(identity: Option<&Identity>, provider: &CryptoProvider) -> Result<Self, Failure> {
        let key = match identity {
            None => None,
            Some(id) => {
                let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.pkcs8.to_vec()));
                let signing = provider
                    .key_provider
                    .load_private_key(der)
                    .map_err(|e| Failure::Tls(format!("client key not usable for TLS: {e}")))?;
                let chain = id
                    .chain
                    .iter()
                    .map(|c| CertificateDer::from(c.clone()))
                    .collect();
                Some(Arc::new(CertifiedKey::new(chain, signing)))
            }
        };
        Ok(ClientAuth {
            key,
            asked: AtomicBool::new(false),
        })
    }
}

impl ResolvesClientCert for ClientAuth {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
