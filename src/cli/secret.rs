//! Obtaining passphrases: from an explicit source, or by asking on the terminal.

use std::io::IsTerminal;

use certmesh::pass::{PassSource, Secret};
use certmesh::{Error, Result};

/// Parses a passphrase source given on the command line.
pub fn parse_source(spec: &str) -> Result<PassSource> {
    spec.parse()
}

/// Reads a passphrase from `spec`, or asks for it on the terminal when no source was
/// given. `flag` names the option in the error shown when neither is possible.
pub fn obtain(spec: Option<&str>, what: &str, flag: &str, confirm: bool) -> Result<Secret> {
    if spec == Some("empty") {
        return Err(Error::Secret(format!(
            "{what}: an empty passphrase is accepted only for keystore passwords"
        )));
    }
    obtain_inner(spec, what, flag, confirm)
}

/// Like [`obtain`], for a keystore's password, where `empty` (and only that spelling)
/// gives the empty password: JKS, JCEKS and PKCS#12 files can be made with one.
pub fn obtain_store_password(
    spec: Option<&str>,
    what: &str,
    flag: &str,
    confirm: bool,
) -> Result<Secret> {
    if spec == Some("empty") {
        return Ok(Secret::new(String::new()));
    }
    obtain_inner(spec, what, flag, confirm)
}

fn obtain_inner(spec: Option<&str>, what: &str, flag: &str, confirm: bool) -> Result<Secret> {
    let secret = match spec {
        Some(s) if !s.is_empty() => {
            let src = parse_source(s)?;
            if src.is_inline() {
                super::warn(format!(
                    "{flag} pass:... exposes the passphrase in the process list and shell history; prefer env:, file: or fd:"
                ));
            }
            src.read()?
        }
        _ => prompt(what, flag, confirm)?,
    };
    if secret.as_bytes().is_empty() {
        return Err(Error::Secret(format!(
            "{what}: the passphrase is empty (for a keystore with an empty password, give {flag} empty)"
        )));
    }
    Ok(secret)
}

fn prompt(what: &str, flag: &str, confirm: bool) -> Result<Secret> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Secret(format!(
            "{what} needed: give {flag} SPEC (env:VAR, file:PATH, fd:N or stdin)"
        )));
    }
    let first = rpassword::prompt_password(format!("{what}: "))
        .map_err(|e| Error::Secret(format!("cannot read {what} from the terminal: {e}")))?;
    let first = Secret::new(first);
    if confirm {
        let again = rpassword::prompt_password(format!("{what} (again): "))
            .map(Secret::new)
            .map_err(|e| Error::Secret(format!("cannot read {what} from the terminal: {e}")))?;
        if again.expose() != first.expose() {
            return Err(Error::Secret(format!("{what}: the two entries differ")));
        }
    }
    Ok(first)
}

/// A passphrase asked for at most once per run, however many keys need it: `--ca-pass
/// stdin` can be read only once, and nobody wants to type the same passphrase twice.
pub struct AskOnce<'a> {
    spec: Option<&'a str>,
    what: &'a str,
    flag: &'a str,
    cached: std::cell::RefCell<Option<Secret>>,
}

impl<'a> AskOnce<'a> {
    pub fn new(spec: Option<&'a str>, what: &'a str, flag: &'a str) -> Self {
        AskOnce {
            spec,
            what,
            flag,
            cached: std::cell::RefCell::new(None),
        }
    }

    /// The passphrase, obtained on first use.
    pub fn get(&self) -> Result<Secret> {
        if let Some(s) = self.cached.borrow().as_ref() {
            return Ok(s.clone());
        }
        let s = obtain(self.spec, self.what, self.flag, false)?;
        *self.cached.borrow_mut() = Some(s.clone());
        Ok(s)
    }

    /// The passphrase if it was asked for.
    pub fn taken(&self) -> Option<Secret> {
        self.cached.borrow().clone()
    }
}
