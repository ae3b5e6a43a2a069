//! The process itself as a place secrets pass through: no core dumps, no debugger
//! attaching as the same user, and child processes (ssh, reload commands) that inherit
//! none of the passphrases the environment carries.

use std::process::Command;
use std::sync::Mutex;

use crate::{Error, Result};

/// Makes the process non-dumpable (`PR_SET_DUMPABLE` 0: no core file, no ptrace or
/// `/proc/PID/mem` access by other processes of the same user) and sets the core size
/// limit to 0, so a crash while a CA passphrase or key is in memory writes it nowhere.
/// Called first thing by the `certmesh` binary.
pub fn protect() -> Result<()> {
    use rustix::process::{setrlimit, DumpableBehavior, Resource, Rlimit};
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| Error::Crypto(format!("cannot make the process non-dumpable: {e}")))?;
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| Error::Crypto(format!("cannot disable core dumps: {e}")))?;
    Ok(())
}

/// True once [`protect`] took effect.
pub fn is_protected() -> bool {
    matches!(
        rustix::process::dumpable_behavior(),
        Ok(rustix::process::DumpableBehavior::NotDumpable)
    )
}

static SECRET_VARS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Notes that the environment variable `name` holds a secret (a pass spec `env:NAME`
/// named it), so that [`clean_env`] keeps it from child processes.
pub fn note_secret_var(name: &str) {
    let mut vars = SECRET_VARS.lock().unwrap_or_else(|e| e.into_inner());
    if !vars.iter().any(|v| v == name) {
        vars.push(name.to_string());
    }
}

/// Removes from a child's environment every variable a pass spec named and every
/// `CERTMESH_*` variable: with the common `SendEnv LC_*` in an ssh config, a passphrase
/// in an `LC_` variable would otherwise reach the remote host.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CERTMESH_") {
            cmd.env_remove(&name);
        }
    }
    for v in SECRET_VARS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        cmd.env_remove(v);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protect_makes_the_process_non_dumpable_without_core_files() {
        protect().unwrap();
        assert!(is_protected());
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(core.current, Some(0));
    }

    #[test]
    fn clean_env_drops_named_and_own_variables() {
        note_secret_var("LC_TEST_SECRET_PASS");
        let mut cmd = Command::new("env");
        cmd.env("LC_TEST_SECRET_PASS", "x")
            .env("CERTMESH_TEST_X", "y");
        clean_env(&mut cmd);
        // Set after cleaning: env_remove of a variable set on the command cancels it.
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs
            .iter()
            .any(|(k, v)| *k == "LC_TEST_SECRET_PASS" && v.is_none()));
    }
}
