//! Aliases for entries added to one store together. Java's keystores look aliases up
//! ignoring case (JKS and PKCS#12 lower-case them), so two aliases that differ only in case
//! are one alias: the second gets a suffix instead of hiding the first.

use std::collections::HashSet;

use super::jks::normalize_alias;

/// Hands out unique aliases: the base itself, else `base-2`, `base-3`, ...
#[derive(Debug, Default)]
pub struct Aliases {
    taken: HashSet<String>,
}

impl Aliases {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first of `base`, `base-2`, `base-3`, ... not handed out yet (ignoring case);
    /// it is taken from now on.
    pub fn allocate(&mut self, base: &str) -> String {
        let mut candidate = base.to_string();
        let mut n = 2;
        while !self.taken.insert(normalize_alias(&candidate)) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_ignore_case() {
        let mut a = Aliases::new();
        assert_eq!(a.allocate("CA"), "CA");
        assert_eq!(a.allocate("ca"), "ca-2");
        assert_eq!(a.allocate("Ca"), "Ca-3");
        assert_eq!(a.allocate("other"), "other");
        // A base that is itself a suffixed form taken earlier.
        assert_eq!(a.allocate("ca-2"), "ca-2-2");
    }
}
