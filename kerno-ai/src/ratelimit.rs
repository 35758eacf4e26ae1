//! A token bucket: at most `rate_per_minute` calls a minute, bursts up to that many. Its
//! state is a small file under the cache directory, locked while it is read and written,
//! so every Kerno process on the machine (each `kerno doctor --ai`, the agent) shares one
//! budget. Without a directory the bucket lives in the process.

use std::{
    fs::OpenOptions,
    io::{Read, Seek, SeekFrom, Write},
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `(tokens, at)` after refilling since `at` and taking one if there is one. `Err` gives
/// the seconds until the next token.
fn step(tokens: f64, at: f64, now: f64, rate_per_minute: u32) -> Result<(f64, f64), f64> {
    let cap = f64::from(rate_per_minute.max(1));
    let per_sec = cap / 60.0;
    let t = (tokens + (now - at).max(0.0) * per_sec).min(cap);
    if t >= 1.0 {
        Ok((t - 1.0, now))
    } else {
        Err((1.0 - t) / per_sec)
    }
}

static IN_PROCESS: Mutex<Option<(f64, f64)>> = Mutex::new(None);

/// Take one call from the budget, or say how many seconds until one is free.
pub fn take(dir: Option<&Path>, rate_per_minute: u32) -> Result<(), f64> {
    let cap = f64::from(rate_per_minute.max(1));
    let t = now();
    let Some(dir) = dir else {
        let mut g = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = g.unwrap_or((cap, t));
        let (tokens, at) = step(tokens, at, t, rate_per_minute)?;
        *g = Some((tokens, at));
        return Ok(());
    };
    // A file that cannot be used (read-only disk) leaves the in-process bucket.
    let file = std::fs::create_dir_all(dir).and_then(|_| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join("ratelimit"))
    });
    let Ok(mut f) = file else {
        return take(None, rate_per_minute);
    };
    // SAFETY: flock on a descriptor this function owns; released when `f` closes.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    let mut it = s.split_whitespace().map(str::parse::<f64>);
    let (tokens, at) = match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) if a.is_finite() && b.is_finite() => (a.min(cap), b),
        _ => (cap, t),
    };
    let (tokens, at) = step(tokens, at, t, rate_per_minute)?;
    let _ = f.set_len(0);
    let _ = f.seek(SeekFrom::Start(0));
    let _ = write!(f, "{tokens} {at}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket() {
        assert!(step(1.0, 0.0, 0.0, 6).is_ok());
        let (t, at) = step(1.0, 0.0, 0.0, 6).unwrap();
        let wait = step(t, at, at + 1.0, 6).unwrap_err();
        assert!((wait - 9.0).abs() < 1e-6, "{wait}");
        assert!(
            step(t, at, at + 10.0, 6).is_ok(),
            "refilled after 10 s at 6/min"
        );
        let dir = std::env::temp_dir().join(format!("kerno-ai-rl-{}", std::process::id()));
        assert!(take(Some(&dir), 2).is_ok());
        assert!(take(Some(&dir), 2).is_ok());
        assert!(take(Some(&dir), 2).is_err(), "a burst of two at 2/min");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
