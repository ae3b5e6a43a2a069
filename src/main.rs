//! The `certmesh` command: parse, run, and turn errors into one line and an exit code.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() {
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
            eprintln!("certmesh: {}", cli::paint(&e.to_string(), "31"));
            e.exit_code()
        }
    };
    std::process::exit(code);
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
