//! Answers kept on disk, keyed by a hash of the exact request (provider, URL, model, token
//! limit, instructions and the redacted payload), so the same report asked twice within
//! `ai.cache_ttl` costs one call. What is stored is the provider's reply as it came: in
//! `redacted` mode it holds placeholders, not names.

use std::{
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cache key of a request: hex SHA-256 over its parts, each length-prefixed.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, Deserialize)]
struct Entry {
    created_unix: u64,
    text: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A directory of answers.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    ttl: Duration,
}

impl Cache {
    /// The cache in `dir`, entries valid for `ttl`.
    pub fn new(dir: &Path, ttl: Duration) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
            ttl,
        }
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The answer stored under `key`, if it is younger than the TTL.
    pub fn get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.file(key)).ok()?;
        let e: Entry = serde_json::from_str(&text).ok()?;
        (now().saturating_sub(e.created_unix) < self.ttl.as_secs()).then_some(e.text)
    }

    /// Store `text` under `key` (owner-only file, written whole or not at all).
    pub fn put(&self, key: &str, text: &str) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let body = serde_json::to_string(&Entry {
            created_unix: now(),
            text: text.to_string(),
        })
        .map_err(std::io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body.as_bytes())?;
        drop(f);
        std::fs::rename(&tmp, self.file(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_expiry() {
        let dir = std::env::temp_dir().join(format!("kerno-ai-cache-{}", std::process::id()));
        let c = Cache::new(&dir, Duration::from_secs(60));
        let k = key(&["a", "b"]);
        assert_ne!(k, key(&["ab", ""]), "parts are delimited");
        assert_eq!(c.get(&k), None);
        c.put(&k, "answer").unwrap();
        assert_eq!(c.get(&k).as_deref(), Some("answer"));
        assert_eq!(Cache::new(&dir, Duration::ZERO).get(&k), None, "expired");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
