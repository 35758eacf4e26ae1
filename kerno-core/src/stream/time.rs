//! Dating stream events: the probes stamp them with the monotonic clock.

/// Wall clock minus `CLOCK_MONOTONIC` (what `bpf_ktime_get_ns` reads), ns, now.
pub fn mono_to_unix_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a stack value.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    unix - mono
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in ns.
pub fn format_utc_time(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let ms = (unix_ns / 1_000_000) % 1000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3600,
        (day / 60) % 60,
        day % 60,
        ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_format_to_the_millisecond() {
        // 2026-01-02 03:04:05.678 UTC
        assert_eq!(format_utc_time(1_767_323_045_678_000_000), "03:04:05.678");
        assert_eq!(format_utc_time(0), "00:00:00.000");
    }
}
