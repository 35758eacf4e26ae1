//! `kerno`: the command-line frontend over the built-in rules (the command line itself is
//! the `kerno_cli` library, so programs with rules of their own can reuse it).

fn main() -> std::process::ExitCode {
    kerno_cli::main_with(kerno_rules::builtin)
}
