//! The library's layers only look down, and no modules import each other in a circle.
//!
//! Reads every `src/**/*.rs` (test-only modules left out), collects the paths it names
//! (`use crate::..`, `crate::x::y(..)`, `super::..`, `self::..`), and fails naming the file
//! and line of each import of a higher layer and of each edge of a circle between sibling
//! modules. A module missing from `LAYERS` fails too: a new module gets its place here.
//!
//! The binary's `src/cli/` sits above the whole library; only its circles are checked
//! (its `certmesh::` imports all look down by construction).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's layers, lowest first. A module may use modules of its own layer or of
/// lower ones, never of a higher one.
const LAYERS: &[&[&str]] = &[
    // Typed errors, pass specs, atomic files, durations, process hardening.
    &["error", "pass", "fsio", "duration", "process"],
    // Certificate facts: OID and algorithm names, fingerprints, signatures.
    &["x509"],
    &["key"],
    // Templates, issuing, CSRs, certificate descriptions.
    &["cert"],
    // Path validation (uses x509 and cert's name constraints).
    &["verify"],
    &["keystore"],
    &["inventory"],
    &["ca"],
    // Talks TLS to a live server and judges its chain with verify; cluster's rollover and
    // served-certificate checks use it, so it sits below cluster.
    &["probe"],
    &["cluster"],
    // Reports.
    &["inspect", "check"],
];

/// Imports of a higher layer known today, each with its reason: (importing module, the
/// higher top-level module). An entry no longer needed fails the test, so that the list
/// only shrinks.
const ALLOWED_UPWARD: &[(&str, &str)] = &[];

/// Circles between sibling modules known today (the modules of each, sorted). An entry no
/// longer needed fails the test.
const ALLOWED_CIRCLES: &[&[&str]] = &[];

#[test]
fn layers_only_look_down_and_siblings_form_no_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = Crate::read(&root.join("src"), "lib.rs");
    let bin = Crate::read(&root.join("src"), "main.rs");

    let mut problems = Vec::new();

    // Every top-level library module has a layer.
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (*m, i)))
        .collect();
    for m in lib.modules.iter().filter(|m| m.len() == 1) {
        if !layer_of.contains_key(m[0].as_str()) {
            problems.push(format!(
                "module `{}` has no layer: add it to LAYERS in tests/layering.rs",
                m[0]
            ));
        }
    }

    // Upward imports.
    let mut used_upward = BTreeSet::new();
    for r in &lib.refs {
        let (Some(from), Some(to)) = (r.from.first(), r.to.first()) else {
            continue;
        };
        let (Some(&lf), Some(&lt)) = (layer_of.get(from.as_str()), layer_of.get(to.as_str()))
        else {
            continue;
        };
        if lt > lf {
            if ALLOWED_UPWARD.contains(&(r.from.join("::").as_str(), to.as_str())) {
                used_upward.insert((r.from.join("::"), to.clone()));
                continue;
            }
            problems.push(format!(
                "{}:{}: `{}` imports `{}`, a higher layer ({})",
                r.file.display(),
                r.line,
                r.from.join("::"),
                r.to.join("::"),
                r.text
            ));
        }
    }
    for (from, to) in ALLOWED_UPWARD {
        if !used_upward.contains(&(from.to_string(), to.to_string())) {
            problems.push(format!(
                "ALLOWED_UPWARD entry ({from}, {to}) is no longer needed: remove it"
            ));
        }
    }

    // Circles between siblings, in the library and in the binary.
    let mut used_circles = BTreeSet::new();
    for krate in [&lib, &bin] {
        for scc in krate.circles() {
            let names: Vec<String> = scc.iter().map(|m| m.join("::")).collect();
            if ALLOWED_CIRCLES
                .iter()
                .any(|a| a.iter().map(|s| s.to_string()).collect::<Vec<_>>() == names)
            {
                used_circles.insert(names);
                continue;
            }
            let mut lines = Vec::new();
            for r in &krate.refs {
                let Some((a, b)) = sibling_pair(&r.from, &r.to) else {
                    continue;
                };
                if scc.contains(&a) && scc.contains(&b) {
                    lines.push(format!("    {}:{}: {}", r.file.display(), r.line, r.text));
                }
            }
            lines.dedup();
            problems.push(format!(
                "modules import each other in a circle: {}\n{}",
                names.join(", "),
                lines.join("\n")
            ));
        }
    }
    for a in ALLOWED_CIRCLES {
        let names: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        if !used_circles.contains(&names) {
            problems.push(format!(
                "ALLOWED_CIRCLES entry {names:?} is no longer needed: remove it"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "layering problems:\n{}",
        problems.join("\n")
    );
}

/// A parser for this test itself: it must see every kind of reference it is meant to.
#[test]
fn the_scanner_finds_every_form_of_reference() {
    let src = r#"
use crate::a::b;
use crate::{c, d::{e, f}};
use super::g;
// use crate::commented_out;
/// [`crate::in_doc`]
fn x() { let s = "crate::in_string"; crate::h::i(); let c = '"'; super::super::j(); }
#[cfg(test)]
mod tests {
    use crate::in_tests;
}
"#;
    let found: Vec<(Vec<String>, usize)> = references(src)
        .into_iter()
        .map(|(p, line, _)| (p.segments(&["m".into(), "n".into()]), line))
        .collect();
    let paths: Vec<String> = found.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "c", "d::e", "d::f", "m::g", "h::i", "j"]);
    assert_eq!(found[5].1, 7);
}

/// One crate's modules (file-level, as module paths) and the references between them.
struct Crate {
    modules: BTreeSet<Vec<String>>,
    refs: Vec<Ref>,
}

/// One reference: in `file` at `line`, module `from` names module `to`.
struct Ref {
    file: PathBuf,
    line: usize,
    text: String,
    from: Vec<String>,
    to: Vec<String>,
}

impl Crate {
    fn read(src: &Path, root_file: &str) -> Crate {
        let mut files = Vec::new();
        collect_modules(src, &src.join(root_file), Vec::new(), &mut files);
        let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
        let mut refs = Vec::new();
        for (module, path) in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let rel = path
                .strip_prefix(src.parent().unwrap())
                .unwrap()
                .to_path_buf();
            for (p, line, snippet) in references(&text) {
                let abs = p.segments(module);
                // The longest known module the path names.
                let to = (0..=abs.len())
                    .rev()
                    .map(|n| abs[..n].to_vec())
                    .find(|m| modules.contains(m))
                    .unwrap_or_default();
                // Items of the crate root re-exported from a module (`crate::Error`).
                let to = if to.is_empty() && !abs.is_empty() {
                    match abs[0].as_str() {
                        "Error" | "Result" => vec!["error".to_string()],
                        _ => continue,
                    }
                } else {
                    to
                };
                refs.push(Ref {
                    file: rel.clone(),
                    line,
                    text: snippet,
                    from: module.clone(),
                    to,
                });
            }
        }
        Crate { modules, refs }
    }

    /// Strongly connected sets of sibling modules (more than one module each), sorted.
    fn circles(&self) -> Vec<Vec<Vec<String>>> {
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for r in &self.refs {
            if let Some((a, b)) = sibling_pair(&r.from, &r.to) {
                edges.entry(a).or_default().insert(b);
            }
        }
        let nodes: BTreeSet<Vec<String>> = edges
            .iter()
            .flat_map(|(a, bs)| std::iter::once(a.clone()).chain(bs.iter().cloned()))
            .collect();
        // Kosaraju: reachability both ways is enough for these small graphs.
        let reach = |start: &Vec<String>| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start.clone()];
            while let Some(n) = todo.pop() {
                for m in edges.get(&n).into_iter().flatten() {
                    if seen.insert(m.clone()) {
                        todo.push(m.clone());
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<_, _> = nodes.iter().map(|n| (n.clone(), reach(n))).collect();
        let mut out: Vec<Vec<Vec<String>>> = Vec::new();
        let mut placed = BTreeSet::new();
        for n in &nodes {
            if placed.contains(n) || !reaches[n].contains(n) {
                continue;
            }
            let scc: Vec<Vec<String>> = nodes
                .iter()
                .filter(|m| reaches[n].contains(*m) && reaches[*m].contains(n))
                .cloned()
                .collect();
            placed.extend(scc.iter().cloned());
            if scc.len() > 1 {
                out.push(scc);
            }
        }
        out
    }
}

/// Where `from` naming `to` makes one sibling depend on another: the two children of
/// their deepest common ancestor. None when one contains the other (a module and its
/// own children or parents).
fn sibling_pair(from: &[String], to: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

/// Finds the module files of a crate, following `mod x;` declarations (test-only ones
/// left out) from its root file.
fn collect_modules(
    src: &Path,
    file: &Path,
    module: Vec<String>,
    out: &mut Vec<(Vec<String>, PathBuf)>,
) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    out.push((module.clone(), file.to_path_buf()));
    // The directory holding this module's children.
    let dir = if module.is_empty() {
        src.to_path_buf()
    } else if file.file_name().unwrap() == "mod.rs" {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    let code = strip(&text);
    let mut test_only = false;
    for line in code.lines() {
        let t = line.trim();
        if t.starts_with("#[cfg(test)]") {
            test_only = true;
            continue;
        }
        let decl = t
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ");
        if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            if !test_only {
                let mut child = module.clone();
                child.push(name.to_string());
                let a = dir.join(format!("{name}.rs"));
                let path = if a.exists() {
                    a
                } else {
                    dir.join(name).join("mod.rs")
                };
                collect_modules(src, &path, child, out);
            }
        }
        if !t.starts_with("#[") {
            test_only = false;
        }
    }
}

/// A path as written: relative to the crate root, or to the module (`super`, `self`).
struct WrittenPath {
    supers: usize,
    relative: bool,
    segments: Vec<String>,
}

impl WrittenPath {
    /// The path from the crate root, seen from `module`.
    fn segments(&self, module: &[String]) -> Vec<String> {
        let mut base = if self.relative {
            module[..module.len().saturating_sub(self.supers)].to_vec()
        } else {
            Vec::new()
        };
        base.extend(self.segments.iter().cloned());
        base
    }
}

/// Every `crate::`, `super::` and `self::` path in `text` (comments, strings and
/// `#[cfg(test)]` modules left out), with its line number and the source line.
fn references(text: &str) -> Vec<(WrittenPath, usize, String)> {
    let code = drop_test_modules(&strip(text));
    let source_lines: Vec<&str> = text.lines().collect();
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if boundary && is_ident(chars[i]) {
            let (word, end) = ident_at(&chars, i);
            if matches!(word.as_str(), "crate" | "super" | "self") && at(&chars, end, "::") {
                let line = chars[..i].iter().filter(|c| **c == '\n').count() + 1;
                let mut j = end;
                let mut supers = usize::from(word == "super");
                // super::super::..
                while at(&chars, j, "::") {
                    let (w, e) = ident_at(&chars, skip_ws(&chars, j + 2));
                    if w == "super" {
                        supers += 1;
                        j = e;
                    } else {
                        break;
                    }
                }
                let mut paths = Vec::new();
                let j = use_tree(&chars, j, Vec::new(), &mut paths);
                let snippet = source_lines
                    .get(line - 1)
                    .map(|l| l.trim().to_string())
                    .unwrap_or_default();
                for segments in paths {
                    out.push((
                        WrittenPath {
                            supers,
                            relative: word != "crate",
                            segments,
                        },
                        line,
                        snippet.clone(),
                    ));
                }
                i = j.max(i + 1);
                continue;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    out
}

/// Reads `::seg::seg` or `::{tree, tree}` after a path prefix, pushing each full path.
fn use_tree(
    chars: &[char],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix;
    loop {
        if !at(chars, i, "::") {
            out.push(path);
            return i;
        }
        i = skip_ws(chars, i + 2);
        if chars.get(i) == Some(&'{') {
            i += 1;
            loop {
                i = skip_ws(chars, i);
                match chars.get(i) {
                    Some('}') => return i + 1,
                    Some(',') => i += 1,
                    None => return i,
                    _ => {
                        let (w, e) = ident_at(chars, i);
                        if w.is_empty() {
                            i += 1;
                            continue;
                        }
                        let mut p = path.clone();
                        if w != "self" {
                            p.push(w);
                        }
                        i = use_tree(chars, e, p, out);
                        // `as name`
                        i = skip_ws(chars, i);
                        if at(chars, i, "as ") {
                            let (_, e) = ident_at(chars, skip_ws(chars, i + 3));
                            i = e;
                        }
                    }
                }
            }
        }
        let (w, e) = ident_at(chars, i);
        if w.is_empty() {
            out.push(path);
            return i;
        }
        path.push(w);
        i = e;
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident_at(chars: &[char], i: usize) -> (String, usize) {
    let mut j = i;
    while j < chars.len() && is_ident(chars[j]) {
        j += 1;
    }
    (chars[i..j].iter().collect(), j)
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

fn at(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// The source with comments, string and char literals blanked (newlines kept, so that
/// line numbers stay right).
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        if at(&c, i, "//") {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if at(&c, i, "/*") {
            let mut depth = 0;
            while i < c.len() {
                if at(&c, i, "/*") {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if at(&c, i, "*/") {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (i == 0 || !is_ident(c[i - 1]))
            && (at(&c, i + 1, "\"") || at(&c, i + 1, "#"))
        {
            // Raw string: r"..", r#".."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            for _ in i..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < c.len() && !at(&c, i, &close) {
                blank(&mut out, c[i]);
                i += 1;
            }
            for _ in 0..close.len() {
                out.push(' ');
            }
            i += close.len();
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '"'); otherwise a lifetime.
            let len = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&k| c[k] == '\'').map(|k| k + 1 - i)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match len {
                Some(n) => {
                    for _ in 0..n {
                        out.push(' ');
                    }
                    i += n;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Blanks `#[cfg(test)] mod name { .. }` blocks (code already stripped of comments and
/// strings, so braces balance).
fn drop_test_modules(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out: Vec<char> = c.clone();
    let mut i = 0;
    while i < c.len() {
        if at(&c, i, "#[cfg(test)]") {
            let mut j = skip_ws(&c, i + "#[cfg(test)]".len());
            // Further attributes.
            while c.get(j) == Some(&'#') {
                while j < c.len() && c[j] != ']' {
                    j += 1;
                }
                j = skip_ws(&c, j + 1);
            }
            let (w, e) = ident_at(&c, j);
            let e = if w == "pub" { skip_ws(&c, e) } else { j };
            let (w, e2) = ident_at(&c, e);
            if w == "mod" {
                let mut k = e2;
                while k < c.len() && c[k] != '{' && c[k] != ';' {
                    k += 1;
                }
                if c.get(k) == Some(&'{') {
                    let mut depth = 0;
                    let start = i;
                    while k < c.len() {
                        match c[k] {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                    for ch in out.iter_mut().take(k + 1).skip(start) {
                        if *ch != '\n' {
                            *ch = ' ';
                        }
                    }
                    i = k + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.into_iter().collect()
}
