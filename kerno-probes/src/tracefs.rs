//! tracefs: mounting it when needed, and reading tracepoint field offsets from `format`.

use std::path::{Path, PathBuf};

use crate::ProbeError;

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Where tracefs is mounted (`/sys/kernel/tracing` or `/sys/kernel/debug/tracing`), if it
/// is; mounts nothing.
pub fn find() -> Option<PathBuf> {
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|c| c.join("events").is_dir())
}

/// The tracefs root, mounting tracefs at `/sys/kernel/tracing` when it is not mounted and
/// this process may mount it.
pub fn ensure_mounted() -> Result<PathBuf, ProbeError> {
    for c in CANDIDATES {
        match std::fs::metadata(Path::new(c).join("events")) {
            Ok(m) if m.is_dir() => return Ok(PathBuf::from(c)),
            // tracefs is mode 0700 root: mounted, but not for this uid.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ProbeError::Tracefs(format!(
                    "mounted at {c}, but this process may not read it: reading the tracepoints' formats needs uid 0 or CAP_DAC_READ_SEARCH"
                )));
            }
            _ => {}
        }
    }
    let target = CANDIDATES[0];
    let src = c"nodev";
    let fstype = c"tracefs";
    let tgt = std::ffi::CString::new(target).expect("static path has no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(ProbeError::Tracefs(format!(
            "not mounted, and mounting it at {target} failed: {err}{}",
            if err.raw_os_error() == Some(libc::EPERM) {
                " (mounting needs CAP_SYS_ADMIN, which Kerno does not need otherwise: mount tracefs on the host, or the host's /sys/kernel/tracing into the container)"
            } else {
                ""
            }
        )));
    }
    Ok(PathBuf::from(target))
}

/// The fields of one tracepoint's record: `(name, offset, size)`.
#[derive(Debug, Clone)]
pub struct Format {
    /// `category/name`.
    pub tracepoint: String,
    /// Fields, in file order.
    pub fields: Vec<(String, u32, u32)>,
}

impl Format {
    /// Read `events/<category>/<name>/format` under the tracefs root.
    pub fn read(root: &Path, category: &str, name: &str) -> Result<Format, ProbeError> {
        let path = root.join("events").join(category).join(name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| ProbeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Format::parse(&format!("{category}/{name}"), &text))
    }

    /// Parse the text of a `format` file.
    pub fn parse(tracepoint: &str, text: &str) -> Format {
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut decl = "";
            let mut offset = None;
            let mut size = None;
            for (i, part) in rest.split(';').enumerate() {
                let part = part.trim();
                if i == 0 {
                    decl = part;
                } else if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse().ok();
                }
            }
            let name = decl
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("");
            if let (Some(o), Some(s)) = (offset, size)
                && !name.is_empty()
            {
                fields.push((name.to_string(), o, s));
            }
        }
        Format {
            tracepoint: tracepoint.to_string(),
            fields,
        }
    }

    /// The offset of a field, or `None` when this kernel's record has no such field.
    pub fn offset(&self, field: &str) -> Option<u32> {
        self.fields
            .iter()
            .find(|(n, _, _)| n == field)
            .map(|(_, o, _)| *o)
    }

    /// The offset of a field the programs cannot do without.
    pub fn require(&self, field: &str) -> Result<u32, ProbeError> {
        self.offset(field).ok_or_else(|| ProbeError::MissingField {
            tracepoint: self.tracepoint.clone(),
            field: field.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch
ID: 316
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] comm;\toffset:12;\tsize:4;\tsigned:0;

print fmt: \"prev_comm=%s\"";

    #[test]
    fn parses_fields_arrays_pointers_and_data_loc() {
        let f = Format::parse("sched/sched_switch", SWITCH);
        assert_eq!(f.offset("prev_comm"), Some(8));
        assert_eq!(f.offset("prev_pid"), Some(24));
        assert_eq!(f.offset("prev_state"), Some(32));
        assert_eq!(f.offset("skaddr"), Some(16));
        assert_eq!(f.offset("comm"), Some(12));
        assert_eq!(f.offset("next_pid"), None);
        let err = f.require("next_pid").unwrap_err().to_string();
        assert_eq!(
            err,
            "tracepoint sched/sched_switch has no field next_pid on this kernel"
        );
    }
}
