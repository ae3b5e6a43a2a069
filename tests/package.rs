//! Installed as an operator installs it. `scripts/package` (one static release build)
//! makes the Debian package and the static binary; the package is installed with
//! `dpkg -i`, used (CA as the `certmesh` user, an installed example applied with the
//! installed profiles, man, bash completion, `systemd-analyze verify`), removed and
//! purged, and the CA must survive; the static binary must need no shared library, not
//! even the C library, and run the README session.
//!
//! Needs root (dpkg, chroot), bash-completion and man-db, which
//! `scripts/test` installs. Whatever the package test installs is purged at the end, even
//! when it fails. It refuses to run where certmesh is already installed or
//! /var/lib/certmesh exists, unless a previous run of this test left them (it marks its
//! CA directory), since it deletes them.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{mode, openssl, readme, run, tempdir, Run};

const HOME: &str = "/var/lib/certmesh";
const LOG_DIR: &str = "/var/log/certmesh";
/// Written into HOME right after installing: a HOME holding it was made by this test.
const MARKER: &str = "/var/lib/certmesh/.certmesh-package-test";
/// A profile this test adds to the packaged profile directory, and removes.
const TEST_PROFILE: &str = "/usr/share/certmesh/profiles/package-test.toml";

struct Artifacts {
    dir: PathBuf,
    deb: PathBuf,
    bin: PathBuf,
}

/// `scripts/package`, run once for every test of this file.
fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Result<Artifacts, String>> = OnceLock::new();
    let built = ARTIFACTS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let r = run(Command::new(root.join("scripts/package")).current_dir(root));
        if !r.success() {
            return Err(format!("scripts/package failed: {r:?}"));
        }
        let dir = root.join("target/package");
        let find = |pred: &dyn Fn(&str) -> bool| -> Result<PathBuf, String> {
            fs::read_dir(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(pred))
                .ok_or_else(|| format!("scripts/package left no such file in {}", dir.display()))
        };
        Ok(Artifacts {
            deb: find(&|n| n.starts_with("certmesh_") && n.ends_with("_amd64.deb"))?,
            bin: find(&|n| n.starts_with("certmesh-") && n.ends_with("-x86_64-linux"))?,
            dir,
        })
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn require_root() {
    let r = run(Command::new("id").arg("-u"));
    assert_eq!(
        r.stdout.trim(),
        "0",
        "this test installs a Debian package and needs root (scripts/test runs as root)"
    );
}

/// `git rev-parse HEAD` of this checkout, which `--version` must name.
fn head_commit() -> String {
    let r = run(Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    r.assert_success();
    r.stdout.trim().to_string()
}

fn sh(script: &str) -> Run {
    run(Command::new("bash").arg("-c").arg(script))
}

fn package_installed() -> bool {
    run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "certmesh"]))
        .stdout
        .contains("installed")
}

/// Puts the machine back as it was: the package purged, and what purge keeps on
/// purpose (the CA, the log directory, the user) removed, since this test made them.
fn purge_everything() {
    let _ = fs::remove_file(TEST_PROFILE);
    let _ = run(Command::new("dpkg").args(["--purge", "certmesh"]));
    let _ = fs::remove_dir_all(HOME);
    let _ = fs::remove_dir_all(LOG_DIR);
    let _ = run(Command::new("userdel").arg("certmesh"));
    let _ = run(Command::new("groupdel").arg("certmesh"));
}

/// Purges on drop, so a failing assertion leaves the machine as it was too.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        purge_everything();
    }
}

#[test]
fn debian_package_installs_works_and_purge_keeps_the_ca() {
    require_root();
    let a = artifacts();
    if Path::new(MARKER).exists() {
        purge_everything(); // a previous run of this test was killed
    }
    assert!(
        !package_installed() && !Path::new(HOME).exists(),
        "certmesh is installed here, or {HOME} exists: this test would delete them"
    );
    let user_before = run(Command::new("getent").args(["passwd", "certmesh"]));
    assert!(!user_before.success(), "a certmesh user exists already");
    let _purge = Purge;

    run(Command::new("dpkg").arg("-i").arg(&a.deb)).assert_success();
    fs::write(MARKER, "").unwrap();

    // The user and its home: no login shell, the CA directory private to it.
    let pw = run(Command::new("getent").args(["passwd", "certmesh"]));
    pw.assert_success();
    let fields: Vec<&str> = pw.stdout.trim().split(':').collect();
    assert_eq!(fields[5], HOME, "{pw:?}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{pw:?}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "not a system user: {pw:?}");
    assert_eq!(mode(Path::new(HOME)), 0o700);
    assert_eq!(fs::metadata(HOME).unwrap().uid(), uid);

    // --version of the installed binary names the commit it was built from.
    let v = run(Command::new("/usr/bin/certmesh").arg("--version"));
    v.assert_success();
    assert!(
        v.stdout.contains(&format!("(commit {}", head_commit())),
        "{v:?}"
    );
    assert!(v.stdout.contains("aws-lc-rs"), "{v:?}");

    // The CA, made by the service user in its home, as the units do.
    let ca_init = run(Command::new("runuser")
        .args(["-u", "certmesh", "--", "/usr/bin/certmesh"])
        .args(["--home", "/var/lib/certmesh/pki", "ca", "init"])
        .args(["--name", "Packaged CA"])
        .current_dir("/"));
    ca_init.assert_success();
    let ca_key = Path::new("/var/lib/certmesh/pki/ca/root/key.pem");
    assert_eq!(mode(ca_key), 0o600);
    assert_eq!(fs::metadata(ca_key).unwrap().uid(), uid);

    // An installed example, applied in an empty directory with the installed profiles.
    let work = tempdir();
    let example = "/usr/share/doc/certmesh/examples/wso2-is-apache.toml";
    run(Command::new("/usr/bin/certmesh")
        .args(["--quiet", "cluster", "apply", example, "--out", "out"])
        .current_dir(work.path()))
    .assert_success();
    let lb = work.path().join("out/apache-lb");
    openssl::verify(
        &lb.join("ca-bundle.crt"),
        None,
        &lb.join("server.crt"),
        &["-purpose", "sslserver", "-verify_hostname", "localhost"],
    )
    .assert_success();
    let jks = work.path().join("out/is-node1/wso2carbon.jks");
    let pass = fs::read_to_string(work.path().join("out/is-node1/keystore.pass")).unwrap();
    let list = run(Command::new("keytool")
        .args(["-list", "-keystore"])
        .arg(&jks)
        .args(["-storepass", pass.trim()]));
    assert!(
        list.success() && list.stdout.contains("wso2carbon"),
        "{list:?}"
    );

    // Without --profiles, the packaged directory is read when ./profiles does not exist.
    fs::write(
        TEST_PROFILE,
        "name = \"package-test\"\ndescription = \"d\"\n\
         [[file]]\npath = \"tls/leaf.pem\"\ncontent = \"cert\"\n",
    )
    .unwrap();
    let manifest = work.path().join("mine.toml");
    fs::write(
        &manifest,
        "name = \"mine\"\n[ca]\nname = \"Mine CA\"\n\
         [[member]]\nname = \"m1\"\ndns = [\"m1.example.com\"]\nprofile = \"package-test\"\n",
    )
    .unwrap();
    let apply = |cwd: &Path| {
        run(Command::new("/usr/bin/certmesh")
            .args(["--quiet", "cluster", "apply"])
            .arg(&manifest)
            .arg("--out")
            .arg(work.path().join("mine"))
            .current_dir(cwd))
    };
    let own = tempdir();
    fs::create_dir(own.path().join("profiles")).unwrap();
    let r = apply(own.path()); // ./profiles exists: it replaces the packaged directory
    assert!(
        !r.success() && r.stderr.contains("package-test"),
        "./profiles was not preferred: {r:?}"
    );
    apply(&work.path().join("out")).assert_success();
    assert!(work.path().join("mine/m1/tls/leaf.pem").is_file());

    // man finds the installed page.
    let man = run(Command::new("man").args(["-w", "certmesh"]));
    assert_eq!(
        man.stdout.trim(),
        "/usr/share/man/man1/certmesh.1.gz",
        "{man:?}"
    );
    let page = run(Command::new("man")
        .args(["certmesh-cluster-apply"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80"));
    assert!(
        page.success() && page.stdout.contains("--profiles"),
        "{page:?}"
    );

    // bash completes `certmesh clu<TAB>` from the installed file, loaded on demand by
    // bash-completion as in an interactive shell.
    let complete = sh(r#"
        source /usr/share/bash-completion/bash_completion
        if complete -p certmesh 2>/dev/null; then echo "loaded before asked" >&2; exit 1; fi
        __load_completion certmesh || exit 1
        spec=$(complete -p certmesh)
        fn=${spec#*-F }; fn=${fn%% *}
        COMP_LINE="certmesh clu"; COMP_POINT=${#COMP_LINE}
        COMP_WORDS=(certmesh clu); COMP_CWORD=1
        "$fn" certmesh clu certmesh
        printf '%s\n' "${COMPREPLY[@]}"
    "#);
    assert_eq!(complete.stdout.trim(), "cluster", "{complete:?}");
    for (file, shell) in [
        ("/usr/share/zsh/vendor-completions/_certmesh", "zsh"),
        ("/usr/share/fish/vendor_completions.d/certmesh.fish", "fish"),
    ] {
        let generated = run(Command::new("/usr/bin/certmesh").args(["completions", shell]));
        assert_eq!(
            fs::read_to_string(file).unwrap(),
            generated.stdout,
            "{file}"
        );
    }

    // The units check out and are not enabled; the cron file is not active either.
    let units = [
        "/usr/lib/systemd/system/certmesh-renew.service",
        "/usr/lib/systemd/system/certmesh-renew.timer",
    ];
    let verify = run(Command::new("systemd-analyze").arg("verify").args(units));
    assert!(
        verify.success() && !verify.stderr.contains("certmesh"),
        "{verify:?}"
    );
    assert!(
        fs::read_to_string(units[0])
            .unwrap()
            .contains("ExecStart=/usr/bin/certmesh "),
        "the service must run the packaged binary"
    );
    assert!(!Path::new("/etc/systemd/system/timers.target.wants/certmesh-renew.timer").exists());
    assert!(!Path::new("/etc/cron.d/certmesh-renew").exists());
    let cron = fs::read_to_string("/usr/share/certmesh/cron/certmesh-renew").unwrap();
    assert!(cron.contains("certmesh /usr/bin/certmesh "), "{cron}");
    assert!(Path::new("/usr/share/doc/certmesh/examples/README.md").is_file());
    assert!(Path::new("/usr/share/certmesh/profiles/nginx.toml").is_file());

    // Remove: the program goes, the CA stays.
    fs::remove_file(TEST_PROFILE).unwrap();
    run(Command::new("dpkg").args(["-r", "certmesh"])).assert_success();
    assert!(!Path::new("/usr/bin/certmesh").exists());
    assert!(ca_key.is_file(), "remove deleted the CA key");

    // Purge: still there, and said so loudly.
    let purge = run(Command::new("dpkg").args(["--purge", "certmesh"]));
    purge.assert_success();
    assert!(!package_installed());
    assert!(ca_key.is_file(), "purge deleted the CA key");
    assert!(
        purge.stderr.contains("/var/lib/certmesh was NOT deleted")
            && purge.stderr.contains("private keys"),
        "{purge:?}"
    );
}

#[test]
fn static_binary_needs_no_shared_library() {
    require_root();
    let a = artifacts();

    // Rust links a static-pie executable: `file` says "static-pie linked", and ldd
    // "statically linked" (older ones "not a dynamic executable"), with no library.
    let file = run(Command::new("file").arg("-L").arg(&a.bin));
    assert!(
        file.stdout.contains("static-pie linked") || file.stdout.contains("statically linked"),
        "{file:?}"
    );
    let ldd = run(Command::new("ldd").arg(&a.bin));
    let ldd_out = format!("{}{}", ldd.stdout, ldd.stderr);
    assert!(
        (ldd_out.contains("statically linked") || ldd_out.contains("not a dynamic"))
            && !ldd_out.contains("=>"),
        "{ldd:?}"
    );
    let v = run(Command::new(&a.bin).arg("--version"));
    assert!(
        v.stdout.contains(&format!("(commit {}", head_commit()))
            && v.stdout.contains("statically linked"),
        "{v:?}"
    );

    // A static binary cannot load a PKCS#11 module: it says so in one line instead of
    // crashing inside the module, and creates nothing.
    let module = Path::new("/usr/lib/softhsm/libsofthsm2.so");
    if module.is_file() {
        let home = tempfile::tempdir().unwrap();
        let r = run(Command::new(&a.bin)
            .arg("--home")
            .arg(home.path().join("pki"))
            .args([
                "ca",
                "init",
                "--name",
                "Static CA",
                "--pkcs11",
                "pkcs11:token=t;object=ca",
                "--module",
            ])
            .arg(module)
            .args(["--pin", "env:PIN"])
            .env("PIN", "1234")
            .stdin(std::process::Stdio::null()));
        assert_eq!(r.status, 1, "{r:?}");
        assert!(
            r.stderr
                .contains("statically linked and cannot load PKCS#11 modules")
                && r.stderr.trim().lines().count() == 1,
            "{r:?}"
        );
        assert!(!home.path().join("pki/store.toml").exists());
    }

    // The checksums the README tells operators to check, and the packaged binary is the
    // same file.
    run(Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&a.dir))
    .assert_success();
    let packaged = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xO ./usr/bin/certmesh")
        .arg("sh")
        .arg(&a.deb)
        .output()
        .unwrap();
    assert!(packaged.status.success());
    assert!(
        packaged.stdout == fs::read(&a.bin).unwrap(),
        "the packaged binary differs from the static one"
    );

    // No C library at all: a root directory holding nothing but the binary.
    let root = tempdir();
    fs::copy(&a.bin, root.path().join("certmesh")).unwrap();
    let chrooted = |args: &[&str]| {
        run(Command::new("chroot")
            .arg(root.path())
            .arg("/certmesh")
            .args(["--home", "/pki"])
            .args(args))
    };
    chrooted(&["ca", "init", "--name", "Chroot CA"]).assert_success();
    chrooted(&["issue", "node1", "--dns", "node1.example.com"]).assert_success();
    let issued = root.path().join("pki/issued/node1");
    openssl::verify(
        &issued.join("ca.pem"),
        None,
        &issued.join("cert.pem"),
        &["-verify_hostname", "node1.example.com"],
    )
    .assert_success();

    // The README session, in an empty directory.
    let dir = tempdir();
    fs::copy(&a.bin, dir.path().join("certmesh")).unwrap();
    for (i, block) in readme::blocks().iter().enumerate() {
        let r = readme::run_block(block, dir.path());
        assert!(r.success(), "README block {i} failed:\n{block}\n{r:?}");
    }
}

#[test]
fn version_names_the_commit_and_the_crypto_provider() {
    let r = run(support::certmesh().arg("--version"));
    r.assert_success();
    let line = r.stdout.trim();
    let expected = format!(
        "certmesh {} (commit {}",
        env!("CARGO_PKG_VERSION"),
        head_commit()
    );
    assert!(line.starts_with(&expected), "{line}");
    assert!(
        line.contains(", crypto provider aws-lc-rs 1.") && line.ends_with(" linked)"),
        "{line}"
    );
}
