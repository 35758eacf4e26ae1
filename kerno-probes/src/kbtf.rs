//! Byte offsets of kernel struct members, read from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`).
//!
//! The BTF-typed programs (`tp_btf`) get kernel pointers (a `task_struct *`, a
//! `struct request *`) and read their fields with plain loads that the verifier checks
//! against the same BTF. Rust has no CO-RE relocations, so the loader looks the offsets up
//! here and hands them to the programs as read-only globals, as it does with the classic
//! tracepoints' record offsets (`tracefs::Format`). aya's own BTF parser keeps its type
//! lookups private; this one reads only what an offset lookup needs: the type section's
//! layout, struct and union members, and names.
//!
//! Format: `Documentation/bpf/btf.rst` (header, then a type section of `btf_type` records,
//! each followed by its kind's extra data, then a string section).

use std::path::Path;

use crate::ProbeError;

const MAGIC: u16 = 0xeb9f;

// BTF kinds (`BTF_KIND_*`) whose records carry extra data after the 12-byte header.
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;
const KIND_MAX: u32 = 19;

/// A struct or union of the kernel's BTF: where its member records start.
#[derive(Clone, Copy)]
struct Composite {
    name_off: u32,
    kind_flag: bool,
    vlen: usize,
    /// Byte position of the first member record in the type section.
    members: usize,
}

/// One BTF blob's type section, where each of its records starts, and its strings.
pub(crate) struct KernelBtf {
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Byte position of each type record in `types`; type id `n` is `records[n - 1]`.
    records: Vec<usize>,
}

/// Bytes of kind-specific data after a type record's 12-byte header; `None` for a kind this
/// parser does not know (so it cannot step over it).
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        k if k == 0 || k > KIND_MAX => return None,
        _ => 0,
    })
}

fn bad(what: &str) -> ProbeError {
    ProbeError::BtfLayout(what.to_string())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl KernelBtf {
    /// The running kernel's BTF.
    pub(crate) fn from_sys_fs() -> Result<KernelBtf, ProbeError> {
        Self::from_file(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub(crate) fn from_file(path: &Path) -> Result<KernelBtf, ProbeError> {
        let data = std::fs::read(path)
            .map_err(|e| ProbeError::BtfLayout(format!("reading {}: {e}", path.display())))?;
        Self::parse(&data)
    }

    /// Parses a little-endian BTF blob (the kernel's own byte order on every target Kerno
    /// builds for).
    pub(crate) fn parse(data: &[u8]) -> Result<KernelBtf, ProbeError> {
        let magic = data
            .get(0..2)
            .map(|m| u16::from_le_bytes([m[0], m[1]]))
            .ok_or_else(|| bad("shorter than its header"))?;
        if magic != MAGIC {
            return Err(bad("not little-endian BTF (bad magic)"));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| bad("short header"))? as usize;
        let field = |at: usize| u32_at(data, at).map(|v| v as usize);
        let (Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
            (field(8), field(12), field(16), field(20))
        else {
            return Err(bad("short header"));
        };
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let types = section(type_off, type_len)
            .ok_or_else(|| bad("type section outside the blob"))?
            .to_vec();
        let strings = section(str_off, str_len)
            .ok_or_else(|| bad("string section outside the blob"))?
            .to_vec();
        let mut records = Vec::new();
        let mut at = 0usize;
        while at < types.len() {
            let Some(info) = u32_at(&types, at + 4) else {
                return Err(bad("truncated type record"));
            };
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let extra =
                extra_len(kind, vlen).ok_or_else(|| bad(&format!("unknown type kind {kind}")))?;
            records.push(at);
            at = at + 12 + extra;
        }
        if at != types.len() {
            return Err(bad("truncated type section"));
        }
        Ok(KernelBtf {
            types,
            strings,
            records,
        })
    }

    /// The struct or union whose record starts at `at`, if it is one.
    fn composite_at(&self, at: usize) -> Option<Composite> {
        let name_off = u32_at(&self.types, at)?;
        let info = u32_at(&self.types, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        (kind == KIND_STRUCT || kind == KIND_UNION).then_some(Composite {
            name_off,
            kind_flag: info >> 31 == 1,
            vlen: (info & 0xffff) as usize,
            members: at + 12,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// The byte offset of member `member` of `struct name` (the first struct of that name
    /// that has it). Members of anonymous structs and unions nested in it are found too,
    /// as C finds them.
    pub(crate) fn member_offset(&self, name: &str, member: &str) -> Result<u32, ProbeError> {
        let missing = || {
            bad(&format!(
                "struct {name} has no byte-aligned member {member}"
            ))
        };
        let named = self
            .records
            .iter()
            .filter_map(|&at| self.composite_at(at))
            .filter(|c| self.name(c.name_off) == name.as_bytes());
        for c in named {
            if let Some(bits) = self.find_member(&c, member.as_bytes(), 0) {
                if bits % 8 != 0 {
                    return Err(missing());
                }
                return Ok(bits / 8);
            }
        }
        Err(missing())
    }

    /// The bit offset of `member` inside `c`, searching anonymous members (to a depth of 4).
    fn find_member(&self, c: &Composite, member: &[u8], depth: u32) -> Option<u32> {
        for i in 0..c.vlen {
            let at = c.members + 12 * i;
            let name_off = u32_at(&self.types, at)?;
            let ty = u32_at(&self.types, at + 4)?;
            let raw = u32_at(&self.types, at + 8)?;
            // With kind_flag the high 8 bits are a bitfield's size.
            let bits = if c.kind_flag { raw & 0x00ff_ffff } else { raw };
            if name_off != 0 && self.name(name_off) == member {
                return Some(bits);
            }
            if name_off == 0
                && depth < 4
                && let Some(inner) = self.composite_by_id(ty)
                && let Some(b) = self.find_member(&inner, member, depth + 1)
            {
                return Some(bits + b);
            }
        }
        None
    }

    /// The struct or union with type id `id`, if it is one (ids count records from 1).
    fn composite_by_id(&self, id: u32) -> Option<Composite> {
        let at = *self.records.get((id as usize).checked_sub(1)?)?;
        self.composite_at(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob holding `int`, `struct inner { int b; }` and
    /// `struct outer { int a; union { int c; }; struct inner in; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0inner\0b\0outer\0a\0c\0in\0".to_vec();
        let s = |name: &str| {
            let pat = format!("\0{name}\0");
            strings
                .windows(pat.len())
                .position(|w| w == pat.as_bytes())
                .map(|p| p as u32 + 1)
                .unwrap()
        };
        let mut t: Vec<u8> = Vec::new();
        let mut rec = |words: &[u32]| {
            for w in words {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        // 1: int
        rec(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: struct inner { int b; }
        rec(&[s("inner"), (KIND_STRUCT << 24) | 1, 4, s("b"), 1, 0]);
        // 3: union { int c; }
        rec(&[0, (KIND_UNION << 24) | 1, 4, s("c"), 1, 0]);
        // 4: struct outer { int a; <anon union> at 32 bits; struct inner in at 64 bits }
        rec(&[
            s("outer"),
            (KIND_STRUCT << 24) | 3,
            12,
            s("a"),
            1,
            0,
            0,
            3,
            32,
            s("in"),
            2,
            64,
        ]);
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn finds_members_and_anonymous_ones() {
        let btf = KernelBtf::parse(&blob()).unwrap();
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("outer", "c").unwrap(), 4);
        assert_eq!(btf.member_offset("outer", "in").unwrap(), 8);
        assert_eq!(btf.member_offset("inner", "b").unwrap(), 0);
        assert!(btf.member_offset("outer", "b").is_err());
        assert!(btf.member_offset("nothing", "a").is_err());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(KernelBtf::parse(b"").is_err());
        assert!(KernelBtf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
        let mut b = blob();
        b.truncate(b.len() - 20);
        assert!(KernelBtf::parse(&b).is_err());
        for cut in 0..blob().len() {
            let _ = KernelBtf::parse(&blob()[..cut]);
        }
    }

    #[test]
    fn reads_the_running_kernels_task_struct() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("no kernel BTF here; skipped");
            return;
        }
        let btf = KernelBtf::from_file(path).unwrap();
        let pid = btf.member_offset("task_struct", "pid").unwrap();
        let tgid = btf.member_offset("task_struct", "tgid").unwrap();
        // pid_t pid; pid_t tgid; sit next to each other in every kernel's task_struct.
        assert_eq!(tgid, pid + 4);
        assert!(btf.member_offset("task_struct", "comm").unwrap() > pid);
    }
}
