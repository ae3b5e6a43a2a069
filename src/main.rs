//! The `certmesh` command: parse, run, and turn errors into one line and an exit code.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() {
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
            eprintln!("certmesh: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
