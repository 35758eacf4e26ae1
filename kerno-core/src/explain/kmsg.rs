//! Reading the kernel log itself: the records `/dev/kmsg` still holds (read without
//! blocking, with their timestamps), or `journalctl -k` where `/dev/kmsg` cannot be read
//! (`kernel.dmesg_restrict=1` without root or `CAP_SYSLOG`, a container without it).

use std::{io::Read, os::unix::fs::OpenOptionsExt, process::Command, time::Duration};

use super::{Entry, ExplainError, LogTime};

/// Kernel log lines read from the machine.
#[derive(Clone, Debug)]
pub struct KernelLog {
    /// `/dev/kmsg` or `journalctl -k`, with the window.
    pub source: String,
    /// The kernel's messages, oldest first.
    pub entries: Vec<Entry>,
}

/// CLOCK_MONOTONIC now, microseconds: the clock `/dev/kmsg` stamps its records with (the
/// kernel's local clock, which does not count suspend either).
fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// `\x0a`-style escapes (how `/dev/kmsg` writes non-printable bytes and backslashes)
/// back to bytes.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 4 <= s.len() && s[i + 1] == b'x' {
            let hex = std::str::from_utf8(&s[i + 2..i + 4]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// One `/dev/kmsg` record: `prio,seq,usec,flags[,...];message\n[ KEY=value\n]...`. Only the
/// kernel's own messages (facility 0) are kept: user space may write to `/dev/kmsg` too.
pub fn parse_record(rec: &[u8]) -> Option<(u64, Vec<u8>)> {
    let semi = rec.iter().position(|b| *b == b';')?;
    let header = std::str::from_utf8(&rec[..semi]).ok()?;
    let mut h = header.split(',');
    let prio: u32 = h.next()?.parse().ok()?;
    let _seq: u64 = h.next()?.parse().ok()?;
    let usec: u64 = h.next()?.parse().ok()?;
    if prio >> 3 != 0 {
        return None;
    }
    let body = &rec[semi + 1..];
    let end = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
    Some((usec, unescape(&body[..end])))
}

fn read_kmsg(since: Duration, now_unix_ms: u64) -> Result<Vec<Entry>, String> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!(
                "{e} (reading it needs root or CAP_SYSLOG while kernel.dmesg_restrict is 1)"
            ),
            _ => e.to_string(),
        })?;
    let now_us = monotonic_us();
    let from_us = now_us.saturating_sub(u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
    let mut entries = Vec::new();
    // A record is at most 8 KiB (CONSOLE_EXT_LOG_MAX); each read returns one.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let Some((usec, msg)) = parse_record(&buf[..n]) else {
                    continue;
                };
                if usec < from_us {
                    continue;
                }
                let age_ms = now_us.saturating_sub(usec) / 1000;
                entries.push(Entry {
                    text: msg,
                    time: LogTime {
                        boot_secs: Some(usec as f64 / 1e6),
                        unix_ms: Some(now_unix_ms.saturating_sub(age_ms)),
                    },
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten while we read; carry on from the next one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(entries)
}

/// One `journalctl -o json` line: its message (text or a byte array) and its times.
pub fn parse_journal_line(line: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = match v.get("MESSAGE")? {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => return None,
    };
    let num = |k: &str| v.get(k)?.as_str()?.parse::<u64>().ok();
    Some(Entry {
        text,
        time: LogTime {
            boot_secs: num("_SOURCE_MONOTONIC_TIMESTAMP").map(|u| u as f64 / 1e6),
            unix_ms: num("__REALTIME_TIMESTAMP").map(|u| u / 1000),
        },
    })
}

fn read_journal(since: Duration, now_unix_ms: u64) -> Result<Vec<Entry>, String> {
    let from = (now_unix_ms / 1000).saturating_sub(since.as_secs());
    let out = Command::new("journalctl")
        .args(["-k", "-o", "json", "--no-pager", "-q"])
        .arg(format!("--since=@{from}"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} ({})",
            err.lines().next().unwrap_or("failed"),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_journal_line)
        .collect())
}

/// The kernel's messages of the last `since`: from `/dev/kmsg`, or from the journal when
/// `/dev/kmsg` cannot be read.
pub fn read_kernel_log(since: Duration, now_unix_ms: u64) -> Result<KernelLog, ExplainError> {
    let window = crate::config::format_duration(since);
    let kmsg = match read_kmsg(since, now_unix_ms) {
        Ok(entries) => {
            return Ok(KernelLog {
                source: format!("/dev/kmsg, last {window}"),
                entries,
            });
        }
        Err(e) => e,
    };
    match read_journal(since, now_unix_ms) {
        Ok(entries) => Ok(KernelLog {
            source: format!("journalctl -k, last {window}; /dev/kmsg: {kmsg}"),
            entries,
        }),
        Err(journal) => Err(ExplainError::KernelLog { kmsg, journal }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_escapes() {
        let (usec, msg) =
            parse_record(b"3,812,1234567,-;a\\x5cb\\x0ac\n SUBSYSTEM=block\n").unwrap();
        assert_eq!(usec, 1_234_567);
        assert_eq!(msg, b"a\\b\nc");
        // A user-space record (facility 1) is not the kernel's.
        assert!(parse_record(b"14,5,10,-;hello").is_none());
        assert!(parse_record(b"garbage").is_none());
        assert_eq!(unescape(b"\\x4"), b"\\x4");
    }

    #[test]
    fn journal_lines_text_or_bytes() {
        let e = parse_journal_line(
            r#"{"MESSAGE":"hi","__REALTIME_TIMESTAMP":"1700000000123456","_SOURCE_MONOTONIC_TIMESTAMP":"5000000"}"#,
        )
        .unwrap();
        assert_eq!(e.text, b"hi");
        assert_eq!(e.time.unix_ms, Some(1_700_000_000_123));
        assert_eq!(e.time.boot_secs, Some(5.0));
        let e = parse_journal_line(r#"{"MESSAGE":[104,255]}"#).unwrap();
        assert_eq!(e.text, vec![104, 255]);
        assert!(parse_journal_line("not json").is_none());
    }
}
