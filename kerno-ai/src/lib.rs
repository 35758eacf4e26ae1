//! Kerno's optional AI post-processor.
//!
//! The deterministic report always comes first and always stands. When asked (`--ai`,
//! `ai.enabled`), a [`PostProcessor`] builds a payload from the report's findings (never
//! its raw signals) in the configured privacy mode, checks it with a tripwire that refuses
//! anything the report names, sends it over plain HTTP to the configured provider
//! (Anthropic Messages, OpenAI Chat Completions or any server speaking it, Ollama's
//! `/api/chat`), and returns an [`Analysis`]: the answer with placeholders mapped back,
//! or why there is none. It never fails the report: every error becomes
//! [`Analysis::Failed`].
//!
//! ```no_run
//! use kerno_ai::PostProcessor;
//! use kerno_core::config::{AiConfig, AiProvider};
//!
//! let cfg = AiConfig { provider: AiProvider::Ollama, ..AiConfig::default() };
//! let pp = PostProcessor::new(&cfg).expect("configured");
//! # let report: kerno_core::Report = unimplemented!();
//! let analysis = pp.analyze(&report);
//! ```

pub mod cache;
pub mod payload;
pub mod provider;
pub mod ratelimit;
pub mod redact;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

pub use kerno_core::Analysis;
use kerno_core::{
    Report,
    config::{AiConfig, AiPrivacy, AiProvider},
};

pub use payload::{Payload, SYSTEM_PROMPT};
pub use redact::{Inventory, Kind, Redactor};

/// Why there is no analysis.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// The provider needs a key and none was given.
    #[error("no API key for {provider}: set KERNO_AI_API_KEY or ai.api_key_file (never a flag)")]
    NoKey {
        /// The provider.
        provider: &'static str,
    },
    /// The key file could not be read.
    #[error("cannot read the API key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The tripwire found a name in the payload: nothing was sent.
    #[error("refused to send: {0}")]
    Leak(String),
    /// The whole call took longer than `ai.timeout`.
    #[error("no answer from {provider} within {secs} s (ai.timeout)")]
    Timeout {
        /// The provider.
        provider: &'static str,
        /// The timeout.
        secs: u64,
    },
    /// The provider could not be reached.
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// Where.
        url: String,
        /// Why.
        message: String,
    },
    /// The provider answered with an error, or with something that is not an answer.
    #[error("{0}")]
    Reply(String),
    /// `summary` mode sends no text, so there is nothing to ask about log lines.
    #[error(
        "ai.privacy summary sends no text, so kernel log lines cannot be asked about: use redacted (names replaced) or full"
    )]
    Summary,
    /// `ai.rate_per_minute` calls were made in the last minute.
    #[error(
        "rate limit reached ({rate} calls a minute, ai.rate_per_minute); next call in {wait:.0} s"
    )]
    RateLimited {
        /// The configured rate.
        rate: u32,
        /// Seconds until the next call is allowed.
        wait: f64,
    },
}

/// The analysis of `report` with the settings `cfg` (the key from `KERNO_AI_API_KEY` or
/// `ai.api_key_file`); never an error: a missing key or any failure is
/// [`Analysis::Failed`]. What every frontend calls.
pub fn analyze(cfg: &AiConfig, report: &Report) -> Analysis {
    match PostProcessor::new(cfg) {
        Ok(pp) => pp.analyze(report),
        Err(e) => Analysis::Failed {
            reason: e.to_string(),
        },
    }
}

/// The analysis of the lines `kerno explain` did not know, as [`analyze`] does for a
/// report.
pub fn analyze_unknown(cfg: &AiConfig, explanation: &kerno_core::explain::Explanation) -> Analysis {
    match PostProcessor::new(cfg) {
        Ok(pp) => pp.explain_unknown(explanation),
        Err(e) => Analysis::Failed {
            reason: e.to_string(),
        },
    }
}

/// A request ready to send, and how to read its answer.
#[derive(Debug)]
pub struct Prepared {
    /// The HTTP request (its headers hold the key: print it with [`Prepared::describe`]).
    pub request: provider::Request,
    /// The payload (the user message).
    pub payload: Payload,
    /// The cache key.
    pub cache_key: String,
}

impl Prepared {
    /// The request as text, for `--dry-run`: method, URL, headers with secret values
    /// hidden, and the body as it would be sent.
    pub fn describe(&self) -> String {
        let mut o = format!("POST {}\n", self.request.url);
        for (k, v) in &self.request.headers {
            if provider::is_secret_header(k) {
                o.push_str(&format!("{k}: <hidden: {} characters>\n", v.len()));
            } else {
                o.push_str(&format!("{k}: {v}\n"));
            }
        }
        o.push('\n');
        let body = serde_json::from_str::<serde_json::Value>(&self.request.body)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| self.request.body.clone());
        o.push_str(&body);
        o.push('\n');
        o
    }
}

/// The configured post-processor.
#[derive(Clone)]
pub struct PostProcessor {
    cfg: AiConfig,
    key: Option<String>,
}

impl std::fmt::Debug for PostProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostProcessor")
            .field("cfg", &self.cfg)
            .field("key", &self.key.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl PostProcessor {
    /// A post-processor for `cfg`, its key from `KERNO_AI_API_KEY` or `ai.api_key_file`.
    pub fn new(cfg: &AiConfig) -> Result<PostProcessor, AiError> {
        let from_env = std::env::var("KERNO_AI_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        PostProcessor::with_key(cfg, from_env)
    }

    /// A post-processor for `cfg` with the key `key` (or, when `None`, from
    /// `ai.api_key_file`). Anthropic and api.openai.com need one; a local
    /// OpenAI-compatible server or Ollama does not.
    pub fn with_key(cfg: &AiConfig, key: Option<String>) -> Result<PostProcessor, AiError> {
        let key = match (key, &cfg.api_key_file) {
            (Some(k), _) => Some(k.trim().to_string()),
            (None, Some(path)) => {
                let k = std::fs::read_to_string(path).map_err(|source| AiError::KeyFile {
                    path: path.clone(),
                    source,
                })?;
                Some(k.trim().to_string()).filter(|k| !k.is_empty())
            }
            (None, None) => None,
        };
        let needs_key = match cfg.provider {
            AiProvider::Anthropic => true,
            AiProvider::Openai => cfg.endpoint.is_none(),
            AiProvider::Ollama => false,
        };
        if needs_key && key.is_none() {
            return Err(AiError::NoKey {
                provider: cfg.provider.name(),
            });
        }
        Ok(PostProcessor {
            cfg: cfg.clone(),
            key,
        })
    }

    /// A post-processor for `--dry-run`: like [`PostProcessor::new`], but a missing key
    /// is no error (nothing is sent; the request shows no key header).
    pub fn for_dry_run(cfg: &AiConfig) -> Result<PostProcessor, AiError> {
        match PostProcessor::new(cfg) {
            Err(AiError::NoKey { .. }) => Ok(PostProcessor {
                cfg: cfg.clone(),
                key: None,
            }),
            other => other,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &AiConfig {
        &self.cfg
    }

    /// Build the request for `report` and run the tripwire over its payload.
    pub fn prepare(&self, report: &Report) -> Result<Prepared, AiError> {
        let inventory = Inventory::from_report(report);
        let payload = payload::build(report, self.cfg.privacy, &inventory);
        self.seal(SYSTEM_PROMPT, payload, &inventory)
    }

    /// Build the request for the lines `kerno explain` does not know (the known ones are
    /// explained offline and never sent). `summary` mode sends no text at all, so it
    /// cannot ask about log lines: that is an error naming the modes that can.
    pub fn prepare_unknown(
        &self,
        explanation: &kerno_core::explain::Explanation,
    ) -> Result<Prepared, AiError> {
        if self.cfg.privacy == AiPrivacy::Summary {
            return Err(AiError::Summary);
        }
        let inventory =
            Inventory::from_value(&serde_json::to_value(explanation).unwrap_or_default());
        let payload = payload::build_unknown(explanation, self.cfg.privacy, &inventory);
        self.seal(payload::EXPLAIN_PROMPT, payload, &inventory)
    }

    /// The analysis of `explanation`'s unknown lines; never an error.
    pub fn explain_unknown(&self, explanation: &kerno_core::explain::Explanation) -> Analysis {
        match self.prepare_unknown(explanation).and_then(|p| self.run(p)) {
            Ok(a) => a,
            Err(e) => Analysis::Failed {
                reason: e.to_string(),
            },
        }
    }

    /// The tripwire over `payload`, then the request and its cache key.
    fn seal(
        &self,
        system: &str,
        payload: Payload,
        inventory: &Inventory,
    ) -> Result<Prepared, AiError> {
        if self.cfg.privacy != AiPrivacy::Full {
            redact::check(&payload.text, inventory).map_err(|l| AiError::Leak(l.to_string()))?;
        }
        let model = self.cfg.model();
        let request = provider::request(
            self.cfg.provider,
            self.cfg.endpoint.as_deref(),
            model,
            self.cfg.max_tokens,
            system,
            &payload.text,
            self.key.as_deref(),
        );
        let cache_key = cache::key(&[
            self.cfg.provider.name(),
            &request.url,
            model,
            &self.cfg.max_tokens.to_string(),
            system,
            &payload.text,
        ]);
        Ok(Prepared {
            request,
            payload,
            cache_key,
        })
    }

    /// What `--dry-run` prints: the request that would be sent (nothing is sent).
    pub fn dry_run(&self, report: &Report) -> Result<String, AiError> {
        Ok(self.prepare(report)?.describe())
    }

    /// The analysis of `report`; never an error: a failure is [`Analysis::Failed`].
    pub fn analyze(&self, report: &Report) -> Analysis {
        match self.try_analyze(report) {
            Ok(a) => a,
            Err(e) => Analysis::Failed {
                reason: e.to_string(),
            },
        }
    }

    /// The analysis of `report`, or why there is none.
    pub fn try_analyze(&self, report: &Report) -> Result<Analysis, AiError> {
        self.run(self.prepare(report)?)
    }

    /// Send a prepared request (or take its answer from the cache).
    fn run(&self, prepared: Prepared) -> Result<Analysis, AiError> {
        let cache = self.cache();
        let (raw, cached) = match cache.as_ref().and_then(|c| c.get(&prepared.cache_key)) {
            Some(text) => (text, true),
            None => {
                ratelimit::take(self.cache_dir().as_deref(), self.cfg.rate_per_minute).map_err(
                    |wait| AiError::RateLimited {
                        rate: self.cfg.rate_per_minute,
                        wait,
                    },
                )?;
                let text = self.call(&prepared.request)?;
                if let Some(c) = &cache {
                    // A cache that cannot be written costs a call next time, nothing more.
                    let _ = c.put(&prepared.cache_key, &text);
                }
                (text, false)
            }
        };
        let text = match &prepared.payload.redactor {
            Some(r) => r.unmask(&raw),
            None => raw,
        };
        Ok(Analysis::Ok {
            provider: self.cfg.provider.name().into(),
            model: self.cfg.model().into(),
            privacy: self.cfg.privacy.name().into(),
            text: text.trim().to_string(),
            cached,
        })
    }

    /// `ai.cache_dir`, else `$XDG_CACHE_HOME/kerno/ai`, else `~/.cache/kerno/ai`.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.cfg.cache_dir {
            return Some(d.clone());
        }
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .map(|d| d.join("kerno/ai"))
    }

    fn cache(&self) -> Option<cache::Cache> {
        if self.cfg.cache_ttl.is_zero() {
            return None;
        }
        self.cache_dir()
            .map(|d| cache::Cache::new(&d, self.cfg.cache_ttl))
    }

    /// Send `req`; retry 429/5xx/529 at most twice, honouring `retry-after`, as long as
    /// the whole call stays within `ai.timeout`.
    fn call(&self, req: &provider::Request) -> Result<String, AiError> {
        let p = self.cfg.provider;
        let deadline = Instant::now() + self.cfg.timeout;
        let timeout = || AiError::Timeout {
            provider: p.name(),
            secs: self.cfg.timeout.as_secs(),
        };
        let mut attempt = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(50) {
                return Err(timeout());
            }
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(left))
                .timeout_connect(Some(left.min(Duration::from_secs(10))))
                .http_status_as_error(false)
                .user_agent(concat!("kerno/", env!("CARGO_PKG_VERSION")))
                .build()
                .into();
            let mut r = agent.post(&req.url);
            for (k, v) in &req.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            let mut resp = match r.send(req.body.as_bytes()) {
                Ok(resp) => resp,
                Err(ureq::Error::Timeout(_)) => return Err(timeout()),
                Err(e) => {
                    return Err(AiError::Transport {
                        url: req.url.clone(),
                        message: e.to_string(),
                    });
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0);
            let body = match resp.body_mut().read_to_string() {
                Ok(b) => b,
                Err(ureq::Error::Timeout(_)) => return Err(timeout()),
                Err(e) => {
                    return Err(AiError::Reply(format!(
                        "{} answered HTTP {status} with a body that could not be read ({e})",
                        p.name()
                    )));
                }
            };
            match provider::parse(p, status, &body) {
                Ok(text) => return Ok(text),
                Err(e) if e.retry && attempt < 2 => {
                    let wait = Duration::from_secs_f64(
                        retry_after.unwrap_or(f64::from(1u32 << attempt)).min(600.0),
                    );
                    if Instant::now() + wait >= deadline {
                        return Err(AiError::Reply(format!(
                            "{}; retry-after {:.0} s does not fit in ai.timeout",
                            e.message,
                            wait.as_secs_f64()
                        )));
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(e) if e.retry => {
                    return Err(AiError::Reply(format!(
                        "{} (after {} tries)",
                        e.message,
                        attempt + 1
                    )));
                }
                Err(e) => return Err(AiError::Reply(e.message)),
            }
        }
    }
}
