fn main() {
    // Rebuild when bpf-linker changes, but never fail without it: the host-side build of
    // this crate (as a build-dependency of kerno-probes) links no BPF.
    if let Ok(bpf_linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", bpf_linker.display());
    }
}
