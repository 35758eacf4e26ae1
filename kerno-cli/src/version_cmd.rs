//! `kerno version` (and `--version`): the build (version, git revision, the eBPF object's
//! hash) and the kernel features detected here.

use std::io::Write as _;

use kerno_core::{host::HostRoot, preflight::KernelFeatures};
use serde::Serialize;

use crate::{Failure, cli::GlobalArgs, cli::Output, exit};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision this binary was built from (`unknown` outside a git checkout).
pub const REVISION: &str = env!("BUILD_KERNO_REVISION");
/// sha256 of the eBPF object embedded in this binary, computed at build time.
pub const EBPF_SHA256: &str = env!("BUILD_KERNO_EBPF_SHA256");

#[derive(Serialize)]
struct VersionInfo {
    version: &'static str,
    revision: &'static str,
    ebpf_object_sha256: &'static str,
    target: String,
    kernel: KernelFeatures,
}

fn info() -> VersionInfo {
    let root = HostRoot::new(std::env::var_os("KERNO_HOST_ROOT").unwrap_or_default());
    VersionInfo {
        version: VERSION,
        revision: REVISION,
        ebpf_object_sha256: EBPF_SHA256,
        target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        kernel: KernelFeatures::detect(&root),
    }
}

/// One line: `0.1.0 (rev 0123456789ab, eBPF 0123456789ab)` (what `-V` prints after `kerno`).
pub fn short() -> String {
    format!(
        "{VERSION} (rev {REVISION}, eBPF {})",
        &EBPF_SHA256[..EBPF_SHA256.len().min(12)]
    )
}

/// The long form, after `kerno ` (what `--version` and `kerno version` print).
pub fn long_text() -> String {
    render(&info())
}

fn render(v: &VersionInfo) -> String {
    let k = &v.kernel;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut lines = vec![
        v.version.to_string(),
        format!("revision      {}", v.revision),
        format!("eBPF object   sha256 {}", v.ebpf_object_sha256),
        format!("target        {}", v.target),
        format!("kernel        {}", k.release),
        format!("  BTF         {}", yes(k.btf)),
        format!(
            "  tracefs     {}",
            k.tracefs
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "not mounted".into())
        ),
        format!(
            "  cgroup      {}{}",
            k.cgroup,
            if k.cgroup_layout.is_empty() {
                String::new()
            } else {
                format!(" ({})", k.cgroup_layout.join(", "))
            }
        ),
        format!(
            "  lockdown    {}",
            k.lockdown.as_deref().unwrap_or("not reported")
        ),
        format!(
            "  BPF memory  {}",
            if k.bpf_memcg {
                "charged to the memory cgroup"
            } else {
                "charged to RLIMIT_MEMLOCK"
            }
        ),
        format!("environment   {}", k.environment),
    ];
    lines.push("(kerno preflight checks whether this node can run Kerno)".into());
    lines.join("\n")
}

/// `kerno version [-o pretty|json]`.
pub fn run(g: &GlobalArgs) -> Result<u8, Failure> {
    let out = g.output_for("version", &[Output::Pretty, Output::Json], None)?;
    let v = info();
    let text = match out {
        Output::Json => serde_json::to_string_pretty(&v)?,
        // output_for refused html.
        Output::Pretty | Output::Html => format!("kerno {}", render(&v)),
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(exit::OK)
}
