use thiserror::Error;

/// What can go wrong loading the probes or reading their maps.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The process lacks a privilege the probes need.
    #[error("not permitted to load eBPF probes: missing {missing} (run as root, or grant them)")]
    NotPermitted {
        /// The missing capabilities, e.g. `CAP_BPF and CAP_PERFMON`.
        missing: String,
    },
    /// The kernel does not expose BTF at `/sys/kernel/btf/vmlinux`.
    #[error("kernel BTF is not available at /sys/kernel/btf/vmlinux: {0}")]
    Btf(#[source] aya::BtfError),
    /// The kernel's BTF could not be read, or lacks a struct member a program reads.
    #[error("kernel BTF: {0}")]
    BtfLayout(String),
    /// tracefs is not mounted and could not be mounted.
    #[error("tracefs is not available: {0}")]
    Tracefs(String),
    /// A tracepoint's `format` file lacks a field a program reads.
    #[error("tracepoint {tracepoint} has no field {field} on this kernel")]
    MissingField {
        /// `category/name`.
        tracepoint: String,
        /// The field.
        field: String,
    },
    /// The object could not be loaded (maps could not be created).
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// A program could not be loaded or attached.
    #[error("program {program}: {source}")]
    Program {
        /// The program's name.
        program: String,
        /// The loader's error.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// The object lacks a program or map the loader expects (a build mismatch).
    #[error("the eBPF object has no {kind} named {name}")]
    Missing {
        /// `program` or `map`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Reading a map failed.
    #[error("reading map {map}: {source}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// The loader's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },
    /// A stream option the kernel side cannot take (a bad ring size, a too-long comm).
    #[error("{0}")]
    BadOption(String),
    /// I/O on a kernel interface file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl ProbeError {
    pub(crate) fn map(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> ProbeError {
        move |e| ProbeError::Map {
            map,
            source: Box::new(e),
        }
    }
}
