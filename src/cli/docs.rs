//! `certmesh completions SHELL` and `certmesh man [--out DIR]`: generated from the same
//! clap definitions as the parser, so they can never drift from the real options.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use certmesh::{Error, Result};

use super::{Cli, Context};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh completions bash > /etc/bash_completion.d/certmesh
  certmesh completions zsh > \"${fpath[1]}/_certmesh\"
  certmesh completions fish > ~/.config/fish/completions/certmesh.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh man | man -l -
  certmesh man --out /usr/local/share/man/man1")]
pub struct ManArgs {
    /// Write one page per command (certmesh.1, certmesh-ca-init.1, ...) into DIR instead
    /// of printing the top page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(_ctx: &Context, a: CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "certmesh", &mut out);
    write_stdout(&out)?;
    Ok(0)
}

pub fn man(ctx: &Context, a: ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    match a.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::io(&dir, e))?;
            ctx.say(format!("wrote manual pages to {}", dir.display()));
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Error::io("<stdout>", e))?;
            write_stdout(&out)?;
        }
    }
    Ok(0)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut so = std::io::stdout().lock();
    so.write_all(bytes)
        .and_then(|()| so.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
