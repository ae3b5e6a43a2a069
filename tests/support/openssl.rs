//! Running the system `openssl` (3.0) as an independent checker.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{run, run_with_timeout, Run};

/// How long an `s_client` may take before it is killed.
pub const S_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// `openssl ARGS...`, stdin closed.
pub fn openssl(args: &[&str]) -> Run {
    run(Command::new("openssl").args(args))
}

/// `openssl verify -CAfile ROOT [-untrusted CHAIN] EXTRA... LEAF`.
///
/// Success: exit status 0 and stdout `"<leaf>: OK"`. Useful extras:
/// `-purpose sslserver`, `-verify_hostname NAME`, `-attime EPOCH`,
/// `-x509_strict`, `-crl_check -CRLfile F`.
pub fn verify(root: &Path, untrusted: Option<&Path>, leaf: &Path, extra: &[&str]) -> Run {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(root);
    if let Some(chain) = untrusted {
        cmd.arg("-untrusted").arg(chain);
    }
    cmd.args(extra).arg(leaf);
    run(&mut cmd)
}

fn s_client_command(port: u16, ca_file: &Path, host: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", host])
        .arg("-verify_return_error")
        .args(["-verify_hostname", host])
        .arg("-CAfile")
        .arg(ca_file)
        .args(extra);
    cmd
}

/// `openssl s_client -connect 127.0.0.1:PORT -servername HOST
/// -verify_return_error -verify_hostname HOST -CAfile CA EXTRA...` with stdin
/// closed: it handshakes, prints the session, and quits. Killed (status -1)
/// after [`S_CLIENT_TIMEOUT`].
///
/// Success means BOTH exit status 0 AND `"Verify return code: 0 (ok)"` in
/// stdout (use [`handshake_ok`]). With `-verify_return_error` a bad chain or
/// hostname makes the handshake fail (non-zero status, the reason in stderr
/// as e.g. "verify error:num=62:hostname mismatch").
///
/// Caveat for client-certificate tests (`extra` = `-cert C -key K`): nginx
/// with `ssl_verify_client on` does NOT abort the handshake on a missing or
/// untrusted client certificate; it completes it and answers HTTP 400
/// ("No required SSL certificate was sent" / "The SSL certificate error").
/// So this function gives status 0 either way (checked, TLS 1.2 and 1.3):
/// use [`https_get`] and [`got_http_200`] for those tests.
pub fn s_client(port: u16, ca_file: &Path, host: &str, extra: &[&str]) -> Run {
    run_with_timeout(
        &mut s_client_command(port, ca_file, host, extra),
        None,
        S_CLIENT_TIMEOUT,
    )
}

/// Whether an [`s_client`]/[`https_get`] run verified and completed the handshake.
pub fn handshake_ok(r: &Run) -> bool {
    r.status == 0 && r.stdout.contains("Verify return code: 0 (ok)")
}

/// Like [`s_client`], but sends `GET / HTTP/1.1` (Host: HOST, Connection:
/// close) and reads the whole reply (`-ign_eof`; the handshake details stay
/// in stdout too). Success: [`got_http_200`], i.e. [`handshake_ok`] and
/// stdout containing `"HTTP/1.1 200"` (the test nginx answers with body
/// `ok`). nginx rejecting the client certificate gives `HTTP/1.1 400`.
pub fn https_get(port: u16, ca_file: &Path, host: &str, extra: &[&str]) -> Run {
    let mut cmd = s_client_command(port, ca_file, host, extra);
    cmd.arg("-ign_eof");
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    run_with_timeout(&mut cmd, Some(request.as_bytes()), S_CLIENT_TIMEOUT)
}

/// Whether an [`https_get`] run got `HTTP/1.1 200` over a verified handshake.
pub fn got_http_200(r: &Run) -> bool {
    handshake_ok(r) && r.stdout.contains("HTTP/1.1 200")
}
