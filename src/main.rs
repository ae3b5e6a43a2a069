//! The `certmesh` command: parse, run, and turn errors into one line and an exit code.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() {
    // Before any secret is read: no core file and no same-user debugger can take a CA
    // passphrase or key from this process's memory.
    if let Err(e) = certmesh::process::protect() {
        eprintln!("certmesh: warning: {e}");
    }
    install_panic_hook();
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // --help and --version print to stdout and exit 0; usage errors exit 2.
            e.exit()
        }
    };
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("certmesh: {}", cli::paint(&one_line(&e.to_string()), "31"));
            cli::exit_code(&e)
        }
    };
    std::process::exit(code);
}

/// An error as one line of bounded length: whatever a hostile input put into it, the
/// terminal (or log) gets at most a few hundred characters.
fn one_line(msg: &str) -> String {
    const MAX: usize = 1000;
    let line: String = msg.split(['\n', '\r']).collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}... (message cut)", &line[..i]),
        None => line,
    }
}

/// Output to a closed pipe (`certmesh list | head`) ends the process quietly, as in any
/// Unix tool; any other panic becomes one line instead of a Rust dump.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown cause");
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        eprintln!("certmesh: internal error: {msg} (please report this)");
        std::process::exit(70);
    }));
}
