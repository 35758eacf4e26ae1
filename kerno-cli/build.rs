//! Build facts `kerno version` reports: the git revision of the checkout (or
//! `BUILD_GIT_REVISION`, or `unknown` outside a git checkout, e.g. a container build whose
//! context has no `.git`), and the sha256 of the eBPF object kerno-probes embeds.

use std::{path::Path, process::Command};

use sha2::{Digest, Sha256};

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=BUILD_GIT_REVISION");
    let revision = match std::env::var("BUILD_GIT_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => match git(&dir, &["rev-parse", "--short=12", "HEAD"]) {
            Some(rev) => {
                // Rebuild when HEAD moves or the index changes (a commit, a checkout).
                for p in ["HEAD", "index", "packed-refs"] {
                    if let Some(path) = git(
                        &dir,
                        &["rev-parse", "--path-format=absolute", "--git-path", p],
                    ) {
                        println!("cargo:rerun-if-changed={path}");
                    }
                }
                if let Some(head_ref) = git(&dir, &["symbolic-ref", "-q", "HEAD"])
                    && let Some(path) = git(
                        &dir,
                        &[
                            "rev-parse",
                            "--path-format=absolute",
                            "--git-path",
                            &head_ref,
                        ],
                    )
                {
                    println!("cargo:rerun-if-changed={path}");
                }
                let dirty = git(&dir, &["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty());
                if dirty { format!("{rev}-dirty") } else { rev }
            }
            None => "unknown".to_string(),
        },
    };
    println!("cargo:rustc-env=BUILD_KERNO_REVISION={revision}");

    let object = dir.join("../kerno-probes/ebpf/prebuilt/kerno.bpf.o");
    println!("cargo:rerun-if-changed={}", object.display());
    let hash = match std::fs::read(&object) {
        Ok(bytes) => Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        Err(_) => "unknown".to_string(),
    };
    println!("cargo:rustc-env=BUILD_KERNO_EBPF_SHA256={hash}");
}
