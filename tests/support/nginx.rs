//! A throwaway nginx (Debian's /usr/sbin/nginx, installed by scripts/test)
//! serving HTTPS on a free loopback port with a given certificate and key.
//!
//! ```ignore
//! let web = Nginx::serve(&cert_chain_pem, &key_pem);
//! let r = openssl::s_client(web.port(), &root_pem, "web.example.test", &[]);
//! assert!(openssl::handshake_ok(&r), "{r:?}");
//! ```
//!
//! Every location answers `200 ok\n`. nginx runs in the foreground as a
//! single process (`daemon off; master_process off;`) with all its files
//! (pid, logs, temp paths) in its own temporary directory; dropping the
//! `Nginx` kills it and removes that directory.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{tempdir, TempDir};

pub const NGINX: &str = "/usr/sbin/nginx";
/// How long nginx may take to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Nginx {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// A free TCP port on 127.0.0.1 (bound, read, released: a tiny race remains,
/// which `try_serve_with` covers by retrying on "Address already in use").
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// An nginx config string literal (double-quoted, escaped).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn qpath(p: &Path) -> String {
    quote(p.to_str().expect("UTF-8 path"))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().expect("cwd").join(p)
    }
}

fn config(dir: &Path, port: u16, cert: &Path, key: &Path, extra: &str) -> String {
    let d = |name: &str| qpath(&dir.join(name));
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {pid};
error_log {error_log} info;
events {{
    worker_connections 64;
}}
http {{
    access_log {access_log};
    client_body_temp_path {client_body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
{extra}
        location / {{
            return 200 "ok\n";
        }}
    }}
}}
"#,
        pid = d("nginx.pid"),
        error_log = d("error.log"),
        access_log = d("access.log"),
        client_body = d("client_body_temp"),
        proxy = d("proxy_temp"),
        fastcgi = d("fastcgi_temp"),
        uwsgi = d("uwsgi_temp"),
        scgi = d("scgi_temp"),
        cert = qpath(&absolute(cert)),
        key = qpath(&absolute(key)),
    )
}

fn read_logs(dir: &Path) -> String {
    let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let stderr = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    format!("--- nginx error.log ---\n{log}--- nginx stderr ---\n{stderr}")
}

impl Nginx {
    /// Serves HTTPS with `cert` (a PEM chain, leaf first) and `key`. Panics
    /// (with nginx's error log) if it does not come up within 10 s.
    #[track_caller]
    pub fn serve(cert: &Path, key: &Path) -> Nginx {
        Self::serve_with(cert, key, "")
    }

    /// Like [`Nginx::serve`], with extra directives inside the `server` block,
    /// e.g. `ssl_client_certificate /x/ca.pem; ssl_verify_client on;`.
    #[track_caller]
    pub fn serve_with(cert: &Path, key: &Path, extra_server_directives: &str) -> Nginx {
        Self::try_serve_with(cert, key, extra_server_directives)
            .unwrap_or_else(|e| panic!("nginx did not start: {e}"))
    }

    /// Like [`Nginx::serve`], but a failure to start (e.g. nginx rejecting the
    /// certificate or key, or a key that does not match the certificate)
    /// is returned as `Err(error log)` instead of a panic.
    pub fn try_serve(cert: &Path, key: &Path) -> Result<Nginx, String> {
        Self::try_serve_with(cert, key, "")
    }

    /// [`Nginx::serve_with`] returning `Err(error log)` on failure.
    pub fn try_serve_with(
        cert: &Path,
        key: &Path,
        extra_server_directives: &str,
    ) -> Result<Nginx, String> {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: run scripts/test to install nginx"
        );
        let mut last_err = String::new();
        for _ in 0..5 {
            match Self::start_once(cert, key, extra_server_directives) {
                Ok(n) => return Ok(n),
                Err(e) if e.contains("Address already in use") => last_err = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_err)
    }

    /// Like [`Nginx::serve`], but with a master process, so that [`Nginx::reload`] makes
    /// it read its certificate and key again without dropping connections, as
    /// `nginx -s reload` does in production.
    #[track_caller]
    pub fn serve_reloadable(cert: &Path, key: &Path) -> Nginx {
        Self::start_once_with(cert, key, "", true)
            .unwrap_or_else(|e| panic!("nginx did not start: {e}"))
    }

    /// Sends SIGHUP to the master: new workers with the files as they are now.
    ///
    /// Returns once every worker from before has exited and new ones run: until then an
    /// old worker can still accept a connection and serve the old files, so a test that
    /// saw one new handshake could see an old one next.
    pub fn reload(&self) {
        let master = self.child.id();
        let before = children_of(master);
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(master.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP nginx failed");
        let start = Instant::now();
        loop {
            let now = children_of(master);
            if !now.is_empty() && now.is_disjoint(&before) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nginx did not replace its workers {before:?} after a reload (now {now:?}): {}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_once(cert: &Path, key: &Path, extra: &str) -> Result<Nginx, String> {
        Self::start_once_with(cert, key, extra, false)
    }

    fn start_once_with(
        cert: &Path,
        key: &Path,
        extra: &str,
        master: bool,
    ) -> Result<Nginx, String> {
        let dir = tempdir();
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        let mut text = config(dir.path(), port, cert, key, extra);
        if master {
            text = text.replace("master_process off;", "master_process on;\nuser root;");
        }
        fs::write(&conf, text).expect("write nginx.conf");
        let stderr = fs::File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {NGINX}: {e}"));
        let mut nginx = Nginx { child, port, dir };

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = nginx.child.try_wait().expect("wait for nginx") {
                return Err(format!(
                    "nginx exited with {status}\n{}",
                    read_logs(nginx.dir.path())
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(nginx);
            }
            if Instant::now() >= deadline {
                // Drop kills it; the logs are read first.
                return Err(format!(
                    "nginx did not accept on {addr} within {START_TIMEOUT:?}\n{}",
                    read_logs(nginx.dir.path())
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding nginx.conf, error.log, access.log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's error log (and stderr) so far, for assertion messages.
    pub fn logs(&self) -> String {
        read_logs(self.dir.path())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM lets a master process stop its workers before it exits; KILL follows if
        // it has not gone within a few seconds.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes whose parent is `pid`, from /proc.
fn children_of(pid: u32) -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // stat is "PID (COMM) STATE PPID ..."; COMM may hold spaces and parentheses.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.insert(child);
        }
    }
    out
}
