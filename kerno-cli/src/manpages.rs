//! `kerno completions SHELL` and `kerno man [--out DIR]`, generated from the clap
//! definitions, so they never drift from the flags.

use std::{io::Write as _, path::Path};

use anyhow::Context as _;

use crate::{
    Failure,
    cli::{CompletionsArgs, GlobalArgs, ManArgs, Shell},
    exit, globals,
};

pub fn completions(args: CompletionsArgs, _g: &GlobalArgs) -> Result<u8, Failure> {
    let mut cmd = globals::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kerno", &mut buf);
    let _ = std::io::stdout().lock().write_all(&buf);
    Ok(exit::OK)
}

pub fn man(args: ManArgs, _g: &GlobalArgs) -> Result<u8, Failure> {
    let cmd = globals::command();
    match args.out {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            let _ = std::io::stdout().lock().write_all(&buf);
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let written = write_pages(&cmd, &dir)?;
            eprintln!("kerno: wrote {} man pages into {}", written, dir.display());
        }
    }
    Ok(exit::OK)
}

/// kerno.1, then kerno-COMMAND.1 for every command (not the generated `help`).
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<usize, Failure> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut n = 0;
    let mut page = |c: clap::Command, file: String| -> Result<(), Failure> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c).render(&mut buf)?;
        let path = dir.join(&file);
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        n += 1;
        Ok(())
    };
    page(cmd.clone(), "kerno.1".into())?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name: &'static str = Box::leak(format!("kerno-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).display_name(name);
        page(sub, format!("{name}.1"))?;
    }
    Ok(n)
}
