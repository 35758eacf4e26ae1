//! The `kerno` command line with one more rule: how a crate with custom rules ships them.

fn main() -> std::process::ExitCode {
    kerno_cli::main_with(kerno_test_rule::rules)
}
