//! Stripping what log tools put in front of a kernel message: `dmesg`'s `[  123.456789]`
//! (and its `-T`, `--time-format iso`, `-x` and `-r` forms), `CONFIG_PRINTK_CALLER`'s
//! `[ T1234]`, `/dev/kmsg` record headers, `journalctl -k` (short, short-iso,
//! short-monotonic) and syslog (`/var/log/kern.log`, RFC 3339 stamps), alone or stacked.

use std::sync::LazyLock;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

/// When a message was logged, as far as its prefixes tell.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogTime {
    /// Seconds since boot (`[  123.456789]`, `/dev/kmsg`'s microseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_secs: Option<f64>,
    /// Wall-clock time, Unix milliseconds (`dmesg -T`, syslog, journal, ISO stamps; local
    /// times are read in this machine's time zone; a syslog stamp without a year is taken
    /// to be within the last year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_ms: Option<u64>,
}

impl LogTime {
    /// Neither clock known.
    pub fn is_empty(&self) -> bool {
        self.boot_secs.is_none() && self.unix_ms.is_none()
    }
}

/// A line with its prefixes removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Stripped<'a> {
    /// The kernel's message, leading whitespace kept (stack lines are indented).
    pub message: &'a str,
    /// What the prefixes said about the time.
    pub time: LogTime,
    /// The host a syslog or journal prefix named.
    pub host: Option<String>,
    /// A `/dev/kmsg` dictionary line (` SUBSYSTEM=...`) that carries no message.
    pub metadata: bool,
}

struct Prefixes {
    syslog: Regex,
    kmsg: Regex,
    prio: Regex,
    facility: Regex,
    mono: Regex,
    ctime: Regex,
    iso: Regex,
    caller: Regex,
    dict: Regex,
}

static RE: LazyLock<Prefixes> = LazyLock::new(|| {
    let r = |s: &str| Regex::new(s).expect("prefix regex");
    Prefixes {
        // `Mar 20 17:12:52 host kernel: `, `2021-03-20T17:12:52+0100 host kernel: `,
        // `2026-04-30T00:22:02Z kernel: `, `[ 1234.567890] host kernel: ` (journalctl
        // short-monotonic).
        syslog: r(
            r"^(?:(?P<bsd>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d)|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)|\[ *(?P<mono>\d+\.\d+)\]) (?:(?P<host>\S+) )?kernel(?:\[\d+\])?: ",
        ),
        // `6,1234,5678901,-;` (a /dev/kmsg record, e.g. from `cat /dev/kmsg`).
        kmsg: r(r"^(?P<prio>\d+),(?P<seq>\d+),(?P<usec>\d+),[^;]*;"),
        // `<3>` (dmesg -r).
        prio: r(r"^<\d+>"),
        // `kern  :err   : ` (dmesg -x).
        facility: r(
            r"^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local\d) *:(?:emerg|alert|crit|err|warn|notice|info|debug) *: ",
        ),
        // `[  123.456789] `.
        mono: r(r"^\[ *(?P<secs>\d+\.\d+)\] ?"),
        // `[Sat Mar 20 17:12:52 2021] ` (dmesg -T).
        ctime: r(
            r"^\[(?:[A-Z][a-z]{2} )?(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) (?P<year>\d{4})\] ?",
        ),
        // `2021-03-20T17:12:52,123456+01:00 ` (dmesg --time-format iso).
        iso: r(r"^(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) "),
        // `[ T1234] `, `[    C1] ` (CONFIG_PRINTK_CALLER).
        caller: r(r"^\[ *[TC]\d+\] ?"),
        // ` SUBSYSTEM=block` after a /dev/kmsg record.
        dict: r(r"^ [A-Z_]+=\S*$"),
    }
});

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A local time (this machine's zone) as Unix seconds.
fn local_to_unix(y: i64, mon: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mon) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // SAFETY: `tm` is a plain C struct, zeroed then filled; mktime only reads and
    // normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = (y - 1900) as libc::c_int;
    tm.tm_mon = mon as libc::c_int - 1;
    tm.tm_mday = d as libc::c_int;
    tm.tm_hour = h as libc::c_int;
    tm.tm_min = mi as libc::c_int;
    tm.tm_sec = s as libc::c_int;
    tm.tm_isdst = -1;
    // SAFETY: see above.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t as i64)
}

fn month(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// `2021-03-20T17:12:52,123456+01:00`, `…Z`, `…+0100`, or no zone (local time).
fn parse_iso(s: &str) -> Option<u64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<u32>().ok();
    let (y, mo, d) = (num(0, 4)? as i64, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = &s[19..];
    let mut frac_ms = 0u64;
    if let Some(r) = rest.strip_prefix(['.', ',']) {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        rest = &r[digits.len()..];
        let padded = format!("{digits:0<3}");
        frac_ms = padded[..3].parse().unwrap_or(0);
    }
    let secs = if rest.is_empty() {
        local_to_unix(y, mo, d, h, mi, sec)?
    } else {
        let off = if rest == "Z" {
            0
        } else {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let digits: String = rest[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            let oh: i64 = digits.get(..2)?.parse().ok()?;
            let om: i64 = digits.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
            sign * (oh * 3600 + om * 60)
        };
        days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - off
    };
    u64::try_from(secs).ok().map(|s| s * 1000 + frac_ms)
}

/// `Mar 20 17:12:52` (no year): the latest such time not more than a day after `now`.
fn parse_bsd(s: &str, now_unix_ms: u64) -> Option<u64> {
    let mut it = s.split_whitespace();
    let mon = month(it.next()?)?;
    let day: u32 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<u32>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let now_year = 1970 + (now_unix_ms / 1000 / 86_400 / 365) as i64;
    // The year estimate above can be one too high around New Year; try it and the years
    // around it and keep the latest time that is not in the future.
    let limit = (now_unix_ms / 1000) as i64 + 86_400;
    (now_year - 1..=now_year + 1)
        .rev()
        .filter_map(|y| local_to_unix(y, mon, day, h, mi, sec))
        .find(|t| *t <= limit)
        .and_then(|t| u64::try_from(t).ok())
        .map(|t| t * 1000)
}

/// Strip every prefix from `line`. `now_unix_ms` places syslog stamps that lack a year.
pub fn strip(line: &str, now_unix_ms: u64) -> Stripped<'_> {
    let re = &*RE;
    let mut time = LogTime::default();
    let mut host = None;
    if re.dict.is_match(line) {
        return Stripped {
            message: "",
            time,
            host,
            metadata: true,
        };
    }
    let mut rest = line.trim_end_matches(['\r', '\n']);
    // Prefixes stack (`Oct 29 19:16:03 host kernel: [ 6180.587748] [ T123] msg`): strip
    // until none is left.
    for _ in 0..8 {
        let before = rest.len();
        if let Some(c) = re.syslog.captures(rest) {
            if let Some(b) = c.name("bsd") {
                time.unix_ms = time.unix_ms.or(parse_bsd(b.as_str(), now_unix_ms));
            }
            if let Some(i) = c.name("iso") {
                time.unix_ms = time.unix_ms.or(parse_iso(i.as_str()));
            }
            if let Some(m) = c.name("mono") {
                time.boot_secs = time.boot_secs.or(m.as_str().parse().ok());
            }
            host = c.name("host").map(|h| h.as_str().to_string());
            rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        } else if let Some(c) = re.kmsg.captures(rest) {
            if let Some(u) = c.name("usec").and_then(|u| u.as_str().parse::<u64>().ok()) {
                time.boot_secs = time.boot_secs.or(Some(u as f64 / 1e6));
            }
            rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        } else if let Some(m) = re.prio.find(rest) {
            rest = &rest[m.end()..];
        } else if let Some(m) = re.facility.find(rest) {
            rest = &rest[m.end()..];
        } else if let Some(c) = re.mono.captures(rest) {
            time.boot_secs = time
                .boot_secs
                .or(c.name("secs").and_then(|s| s.as_str().parse().ok()));
            rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        } else if let Some(c) = re.ctime.captures(rest) {
            let n = |k: &str| c.name(k).and_then(|v| v.as_str().parse::<u32>().ok());
            let t = (|| {
                local_to_unix(
                    n("year")? as i64,
                    month(c.name("mon")?.as_str())?,
                    n("day")?,
                    n("h")?,
                    n("m")?,
                    n("s")?,
                )
            })();
            time.unix_ms = time
                .unix_ms
                .or(t.and_then(|t| u64::try_from(t).ok()).map(|t| t * 1000));
            rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        } else if let Some(c) = re.iso.captures(rest) {
            time.unix_ms = time
                .unix_ms
                .or(c.name("iso").and_then(|i| parse_iso(i.as_str())));
            rest = &rest[c.get(0).map_or(0, |m| m.end())..];
        } else if let Some(m) = re.caller.find(rest) {
            rest = &rest[m.end()..];
        }
        if rest.len() == before {
            break;
        }
    }
    Stripped {
        message: rest,
        time,
        host,
        metadata: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_790_000_000_000; // 2026-09-21

    #[test]
    fn each_prefix_style() {
        let msg = "TCP: out of memory -- consider tuning tcp_mem";
        for (line, boot, wall) in [
            (format!("[ 1234.567890] {msg}"), Some(1234.56789), false),
            (format!("[Sat Mar 20 17:12:52 2021] {msg}"), None, true),
            (
                format!("2021-03-20T17:12:52,123456+01:00 {msg}"),
                None,
                true,
            ),
            (
                format!("kern  :err   : [ 1234.567890] {msg}"),
                Some(1234.56789),
                false,
            ),
            (format!("<3>[ 1234.567890] {msg}"), Some(1234.56789), false),
            (
                format!("[  601.749973][    C1] {msg}"),
                Some(601.749973),
                false,
            ),
            (
                format!("[10163.739261] [   T9326] {msg}"),
                Some(10163.739261),
                false,
            ),
            (format!("3,812,1234567890,-;{msg}"), Some(1234.56789), false),
            (format!("Mar 20 17:12:52 node-1 kernel: {msg}"), None, true),
            (
                format!("2021-03-20T17:12:52+0100 node-1 kernel: {msg}"),
                None,
                true,
            ),
            (
                format!("[ 1234.567890] node-1 kernel: {msg}"),
                Some(1234.56789),
                false,
            ),
            (
                format!("Oct 29 19:16:03 node-1 kernel: [ 6180.587748] {msg}"),
                Some(6180.587748),
                true,
            ),
            (format!("2026-04-30T00:22:02Z kernel: {msg}"), None, true),
            (msg.to_string(), None, false),
        ] {
            let s = strip(&line, NOW);
            assert_eq!(s.message, msg, "{line}");
            assert_eq!(s.time.boot_secs, boot, "{line}");
            assert_eq!(s.time.unix_ms.is_some(), wall, "{line}");
        }
    }

    #[test]
    fn iso_stamps_with_zones() {
        assert_eq!(parse_iso("2021-03-20T17:12:52Z"), Some(1_616_260_372_000));
        assert_eq!(
            parse_iso("2021-03-20T18:12:52,250000+01:00"),
            Some(1_616_260_372_250)
        );
        assert_eq!(
            parse_iso("2021-03-20T18:12:52+0100"),
            Some(1_616_260_372_000)
        );
    }

    #[test]
    fn kmsg_dictionary_lines_are_metadata() {
        assert!(strip(" SUBSYSTEM=block", NOW).metadata);
        assert!(!strip(" ? foo+0x1/0x2", NOW).metadata);
    }
}
