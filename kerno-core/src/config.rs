//! Configuration: defaults < YAML file < `KERNO_*` environment < flags.
//!
//! The file is the one named by `--config`, else by `KERNO_CONFIG`, else the first of
//! `$XDG_CONFIG_HOME/kerno/config.yaml`, `~/.config/kerno/config.yaml` and
//! `/etc/kerno/config.yaml` that exists. A file that was named explicitly must exist.
//! Unknown keys, bad values and unreadable files are errors that name the key or file.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{ConfigError, Domain, ThresholdRegistry, Thresholds};

/// Everything configurable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `doctor` window, e.g. `30s`, `2m`.
    #[serde(with = "duration_str")]
    pub duration: Duration,
    /// `pretty` or `json`.
    pub output: String,
    /// Rule thresholds set over the rules' defaults (checked against the rules' declared
    /// thresholds when loaded; see [`ThresholdRegistry`]).
    pub thresholds: Thresholds,
    /// Probe settings.
    pub probes: ProbeConfig,
    /// The agent (`kerno start`).
    pub agent: AgentConfig,
    /// Where the host's filesystems are mounted (`/host` in a DaemonSet); every host path
    /// (`/proc`, `/sys/fs/cgroup`, `/var/log/pods`, `/run/containerd`, ...) is read under
    /// it. `None`: `/`.
    pub host_root: Option<PathBuf>,
    /// The node name findings carry; `None`: the host's name. `NODE_NAME` (the downward
    /// API) sets it over the file, `KERNO_NODE_NAME` over both.
    pub node_name: Option<String>,
    /// The optional AI post-processor (off by default; see `docs/ai.md`).
    pub ai: AiConfig,
}

/// Which provider's HTTP API the AI post-processor speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiProvider {
    /// Anthropic Messages (`POST /v1/messages`).
    #[default]
    Anthropic,
    /// OpenAI Chat Completions (`POST /v1/chat/completions`), and any server speaking it
    /// (vLLM, llama.cpp's server, LiteLLM, Ollama's `/v1`).
    Openai,
    /// Ollama's native `POST /api/chat`, for air-gapped nodes.
    Ollama,
}

impl AiProvider {
    /// `anthropic`, `openai`, `ollama`.
    pub fn name(self) -> &'static str {
        match self {
            AiProvider::Anthropic => "anthropic",
            AiProvider::Openai => "openai",
            AiProvider::Ollama => "ollama",
        }
    }

    /// The base URL used when `ai.endpoint` is not set.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            AiProvider::Anthropic => "https://api.anthropic.com",
            AiProvider::Openai => "https://api.openai.com",
            AiProvider::Ollama => "http://localhost:11434",
        }
    }

    /// The model used when `ai.model` is not set.
    pub fn default_model(self) -> &'static str {
        match self {
            AiProvider::Anthropic => "claude-sonnet-4-5",
            AiProvider::Openai => "gpt-4o-mini",
            AiProvider::Ollama => "llama3.1",
        }
    }
}

impl std::str::FromStr for AiProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "anthropic" => Ok(AiProvider::Anthropic),
            "openai" => Ok(AiProvider::Openai),
            "ollama" => Ok(AiProvider::Ollama),
            o => Err(format!("{o:?}: expected anthropic, openai or ollama")),
        }
    }
}

/// What of a report may leave the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiPrivacy {
    /// Rule ids, severities, units and numbers; no text and no names at all.
    #[default]
    Summary,
    /// The findings' text with every name, address, id and path replaced by a typed
    /// placeholder (`<pod-1>`, `<ip-2>`); the reply is mapped back locally.
    Redacted,
    /// The findings as they are, names included (an explicit opt-in).
    Full,
}

impl AiPrivacy {
    /// `summary`, `redacted`, `full`.
    pub fn name(self) -> &'static str {
        match self {
            AiPrivacy::Summary => "summary",
            AiPrivacy::Redacted => "redacted",
            AiPrivacy::Full => "full",
        }
    }
}

impl std::str::FromStr for AiPrivacy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "summary" => Ok(AiPrivacy::Summary),
            "redacted" => Ok(AiPrivacy::Redacted),
            "full" => Ok(AiPrivacy::Full),
            o => Err(format!("{o:?}: expected summary, redacted or full")),
        }
    }
}

/// The AI post-processor's settings (`ai:`). The API key is never part of it: it comes
/// from `KERNO_AI_API_KEY` or the file `api_key_file` names, read when a call is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Run the post-processor on every `doctor` (as `--ai` does).
    pub enabled: bool,
    /// The provider's API format.
    pub provider: AiProvider,
    /// The model; `None`: the provider's default.
    pub model: Option<String>,
    /// Base URL (`https://api.anthropic.com`, `http://vllm:8000`); `None`: the
    /// provider's default. A URL ending in the API path is used as it is.
    pub endpoint: Option<String>,
    /// A file holding the API key (a mounted Secret); `KERNO_AI_API_KEY` wins over it.
    pub api_key_file: Option<PathBuf>,
    /// What may leave the machine.
    pub privacy: AiPrivacy,
    /// The whole call, retries included, must end within this.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// The reply's length limit, in tokens.
    pub max_tokens: u32,
    /// How long an answer is reused for the same payload and model; `0s`: no cache.
    #[serde(with = "duration_str")]
    pub cache_ttl: Duration,
    /// At most this many calls a minute (a token bucket shared by all Kerno processes
    /// that use the same cache directory).
    pub rate_per_minute: u32,
    /// Where answers and the rate limiter's state are kept; `None`:
    /// `$XDG_CACHE_HOME/kerno/ai`, else `~/.cache/kerno/ai`.
    pub cache_dir: Option<PathBuf>,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            enabled: false,
            provider: AiProvider::default(),
            model: None,
            endpoint: None,
            api_key_file: None,
            privacy: AiPrivacy::default(),
            timeout: Duration::from_secs(30),
            max_tokens: 1024,
            cache_ttl: Duration::from_secs(3600),
            rate_per_minute: 10,
            cache_dir: None,
        }
    }
}

impl AiConfig {
    /// The model in use: `model`, else the provider's default.
    pub fn model(&self) -> &str {
        self.model
            .as_deref()
            .unwrap_or(self.provider.default_model())
    }

    /// Check values the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout < Duration::from_secs(1) || self.timeout > Duration::from_secs(600) {
            return Err(invalid(
                "ai.timeout",
                format!(
                    "{} is out of range: use 1s to 10m",
                    format_duration(self.timeout)
                ),
            ));
        }
        if !(1..=100_000).contains(&self.max_tokens) {
            return Err(invalid(
                "ai.max_tokens",
                format!("{} is out of range: use 1 to 100000", self.max_tokens),
            ));
        }
        if !(1..=600).contains(&self.rate_per_minute) {
            return Err(invalid(
                "ai.rate_per_minute",
                format!("{} is out of range: use 1 to 600", self.rate_per_minute),
            ));
        }
        if self.cache_ttl > Duration::from_secs(7 * 86400) {
            return Err(invalid(
                "ai.cache_ttl",
                format!(
                    "{} is out of range: use 0s (no cache) to 168h",
                    format_duration(self.cache_ttl)
                ),
            ));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(invalid(
                "ai.endpoint",
                format!("{e:?} is not an http:// or https:// URL"),
            ));
        }
        if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(invalid("ai.model", "must not be empty".into()));
        }
        Ok(())
    }
}

/// Probe settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Domains to observe; all when empty.
    pub domains: Vec<Domain>,
    /// Successful syscalls at least this slow (ms) are attributed to their process.
    pub slow_syscall_ms: f64,
    /// Run-queue delays at least this long (ms) are attributed to their process.
    pub slow_runq_ms: f64,
}

/// Agent settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Address for `/metrics`, `/healthz`, `/readyz` (`:9090` = all interfaces).
    pub listen: String,
    /// How much history the agent keeps, e.g. `5m`.
    #[serde(with = "duration_str")]
    pub window: Duration,
    /// The longest window the findings gauges (`kerno_findings_firing`) look back over,
    /// e.g. `30s` (at most `window`): every rule is evaluated over it, and a rule with a
    /// short window of its own ([`crate::Rule::min_window`]) over that too, so it fires
    /// within seconds and stays firing while this window still holds the incident. `1s` to
    /// `1h`.
    #[serde(with = "duration_str")]
    pub findings_window: Duration,
    /// The agent's unix socket, where `kerno doctor` asks for windows.
    pub socket: PathBuf,
    /// How often the agent records the levels `kerno predict` projects (memory per cgroup
    /// and host, descriptors per process); it keeps an hour of them. `1s` to `5m`.
    #[serde(with = "duration_str")]
    pub levels_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            duration: Duration::from_secs(30),
            output: "pretty".into(),
            thresholds: Thresholds::default(),
            probes: ProbeConfig::default(),
            agent: AgentConfig::default(),
            host_root: None,
            node_name: None,
            ai: AiConfig::default(),
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            domains: Vec::new(),
            slow_syscall_ms: 1.0,
            slow_runq_ms: 1.0,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: ":9090".into(),
            window: Duration::from_secs(300),
            findings_window: Duration::from_secs(30),
            socket: PathBuf::from("/run/kerno/agent.sock"),
            levels_every: Duration::from_secs(15),
        }
    }
}

/// Environment variables Kerno reads (besides `KERNO_THRESHOLD_<KEY>` and `NO_COLOR`).
pub const ENV_VARS: [&str; 23] = [
    "KERNO_CONFIG",
    "KERNO_DURATION",
    "KERNO_OUTPUT",
    "KERNO_DOMAINS",
    "KERNO_LISTEN",
    "KERNO_WINDOW",
    "KERNO_FINDINGS_WINDOW",
    "KERNO_SOCKET",
    "KERNO_FAIL_PROBES",
    "KERNO_HOST_ROOT",
    "KERNO_NODE_NAME",
    "KERNO_AI_ENABLED",
    "KERNO_AI_PROVIDER",
    "KERNO_AI_MODEL",
    "KERNO_AI_ENDPOINT",
    "KERNO_AI_API_KEY",
    "KERNO_AI_API_KEY_FILE",
    "KERNO_AI_PRIVACY",
    "KERNO_AI_TIMEOUT",
    "KERNO_AI_MAX_TOKENS",
    "KERNO_AI_CACHE_TTL",
    "KERNO_AI_RATE_PER_MINUTE",
    "KERNO_AI_CACHE_DIR",
];

impl Config {
    /// The config file to read: `explicit` (from `--config`), else `KERNO_CONFIG`, else the
    /// first usual place that exists. The flag says whether the file was named explicitly.
    pub fn locate(explicit: Option<&Path>, env: &[(String, String)]) -> Option<(PathBuf, bool)> {
        if let Some(p) = explicit {
            return Some((p.to_path_buf(), true));
        }
        if let Some((_, v)) = env.iter().find(|(k, _)| k == "KERNO_CONFIG") {
            return Some((PathBuf::from(v), true));
        }
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut places = Vec::new();
        if let Some(x) = get("XDG_CONFIG_HOME") {
            places.push(PathBuf::from(x).join("kerno/config.yaml"));
        }
        if let Some(h) = get("HOME") {
            places.push(PathBuf::from(h).join(".config/kerno/config.yaml"));
        }
        places.push(PathBuf::from("/etc/kerno/config.yaml"));
        places.into_iter().find(|p| p.is_file()).map(|p| (p, false))
    }

    /// Parse a YAML document; its thresholds are checked against `rules`' declarations.
    pub fn from_yaml(
        text: &str,
        path: &str,
        rules: &ThresholdRegistry,
    ) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut c: Config = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        rules
            .check(&mut c.thresholds)
            .map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
        c.validate()?;
        Ok(c)
    }

    /// Read a YAML file.
    pub fn from_file(path: &Path, rules: &ThresholdRegistry) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_yaml(&text, &path.display().to_string(), rules)
    }

    /// Defaults, then the located file, then the environment (`env` is usually
    /// `std::env::vars().collect()`). Flags are applied by the caller afterwards. Thresholds
    /// are checked against `rules` (the thresholds the rules in use declare).
    pub fn load(
        explicit: Option<&Path>,
        env: &[(String, String)],
        rules: &ThresholdRegistry,
    ) -> Result<Config, ConfigError> {
        let mut c = match Config::locate(explicit, env) {
            Some((p, _)) => Config::from_file(&p, rules)?,
            None => Config::default(),
        };
        c.apply_env(env, rules)?;
        Ok(c)
    }

    /// Apply `KERNO_*` variables.
    pub fn apply_env(
        &mut self,
        env: &[(String, String)],
        rules: &ThresholdRegistry,
    ) -> Result<(), ConfigError> {
        // The downward API's conventional name, under KERNO_NODE_NAME.
        if let Some((_, v)) = env.iter().find(|(k, _)| k == "NODE_NAME")
            && !v.trim().is_empty()
        {
            self.node_name = Some(v.trim().to_string());
        }
        for (k, v) in env {
            if !k.starts_with("KERNO_") {
                continue;
            }
            if let Some(t) = k.strip_prefix("KERNO_THRESHOLD_") {
                self.set_threshold(&t.to_ascii_lowercase(), v, rules)
                    .map_err(|e| match e {
                        ConfigError::Invalid { reason, .. } => ConfigError::Invalid {
                            key: k.clone(),
                            reason,
                        },
                        other => other,
                    })?;
                continue;
            }
            match k.as_str() {
                // The key is read when a call is made, never kept in the configuration.
                "KERNO_CONFIG" | "KERNO_FAIL_PROBES" | "KERNO_AI_API_KEY" => {}
                "KERNO_AI_ENABLED" => self.ai.enabled = parse_bool(v).map_err(|r| invalid(k, r))?,
                "KERNO_AI_PROVIDER" => self.ai.provider = v.parse().map_err(|r| invalid(k, r))?,
                "KERNO_AI_MODEL" => self.ai.model = (!v.trim().is_empty()).then(|| v.trim().into()),
                "KERNO_AI_ENDPOINT" => {
                    self.ai.endpoint = (!v.trim().is_empty()).then(|| v.trim().into())
                }
                "KERNO_AI_API_KEY_FILE" => {
                    self.ai.api_key_file = (!v.is_empty()).then(|| PathBuf::from(v))
                }
                "KERNO_AI_PRIVACY" => self.ai.privacy = v.parse().map_err(|r| invalid(k, r))?,
                "KERNO_AI_TIMEOUT" => {
                    self.ai.timeout = parse_duration(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_AI_MAX_TOKENS" => {
                    self.ai.max_tokens = v
                        .trim()
                        .parse()
                        .map_err(|_| invalid(k, format!("{v:?} is not a whole number")))?
                }
                "KERNO_AI_CACHE_TTL" => {
                    self.ai.cache_ttl = parse_duration(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_AI_RATE_PER_MINUTE" => {
                    self.ai.rate_per_minute = v
                        .trim()
                        .parse()
                        .map_err(|_| invalid(k, format!("{v:?} is not a whole number")))?
                }
                "KERNO_AI_CACHE_DIR" => {
                    self.ai.cache_dir = (!v.is_empty()).then(|| PathBuf::from(v))
                }
                "KERNO_DURATION" => self.duration = parse_duration(v).map_err(|r| invalid(k, r))?,
                "KERNO_WINDOW" => {
                    self.agent.window = parse_duration(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_FINDINGS_WINDOW" => {
                    self.agent.findings_window = parse_duration(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_OUTPUT" => self.output = v.clone(),
                "KERNO_LISTEN" => self.agent.listen = v.clone(),
                "KERNO_SOCKET" => self.agent.socket = PathBuf::from(v),
                "KERNO_HOST_ROOT" => {
                    self.host_root = (!v.is_empty()).then(|| PathBuf::from(v));
                }
                "KERNO_NODE_NAME" => {
                    self.node_name = (!v.trim().is_empty()).then(|| v.trim().to_string());
                }
                "KERNO_DOMAINS" => {
                    self.probes.domains = parse_domains(v).map_err(|r| invalid(k, r))?
                }
                _ => {
                    return Err(ConfigError::UnknownEnv {
                        name: k.clone(),
                        known: format!("{}, KERNO_THRESHOLD_<KEY>", ENV_VARS.join(", ")),
                    });
                }
            }
        }
        self.validate()
    }

    /// Set one threshold by its key (`syscall_p99_ms`), from text. Lists (such as
    /// `benign_errnos`) are comma-separated.
    pub fn set_threshold(
        &mut self,
        key: &str,
        value: &str,
        rules: &ThresholdRegistry,
    ) -> Result<(), ConfigError> {
        rules.set_text(&mut self.thresholds, key, value)
    }

    /// Check values that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.output.as_str(), "pretty" | "json" | "html") {
            return Err(invalid(
                "output",
                format!("expected pretty, json or html, got {:?}", self.output),
            ));
        }
        check_window("duration", self.duration)?;
        if let Some(r) = &self.host_root
            && !r.is_absolute()
        {
            return Err(invalid(
                "host_root",
                format!("must be an absolute path, got {}", r.display()),
            ));
        }
        if self.agent.window < Duration::from_secs(5)
            || self.agent.window > Duration::from_secs(3600)
        {
            return Err(invalid(
                "agent.window",
                format!(
                    "{} is out of range: use 5s to 1h (5m or more lets `kerno doctor` ask for any window)",
                    format_duration(self.agent.window)
                ),
            ));
        }
        if self.agent.findings_window < Duration::from_secs(1)
            || self.agent.findings_window > Duration::from_secs(3600)
        {
            return Err(invalid(
                "agent.findings_window",
                format!(
                    "{} is out of range: use 1s to 1h (at most agent.window)",
                    format_duration(self.agent.findings_window)
                ),
            ));
        }
        if self.agent.levels_every < Duration::from_secs(1)
            || self.agent.levels_every > Duration::from_secs(300)
        {
            return Err(invalid(
                "agent.levels_every",
                format!(
                    "{} is out of range: use 1s to 5m",
                    format_duration(self.agent.levels_every)
                ),
            ));
        }
        for (k, v) in [
            ("probes.slow_syscall_ms", self.probes.slow_syscall_ms),
            ("probes.slow_runq_ms", self.probes.slow_runq_ms),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(
                    k,
                    format!("must be a non-negative number, got {v}"),
                ));
            }
        }
        self.ai.validate()
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        o => Err(format!("{o:?} is not a boolean (use true or false)")),
    }
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason,
    }
}

/// Parse a comma-separated list of domains (`syscalls,tcp`); empty entries are skipped.
pub fn parse_domains(s: &str) -> Result<Vec<Domain>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::parse)
        .collect()
}

/// A `doctor` window must be between 1 s and 5 min.
pub fn check_window(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d < Duration::from_secs(1) || d > Duration::from_secs(300) {
        return Err(invalid(
            key,
            format!("{} is out of range: use 1s to 5m", format_duration(d)),
        ));
    }
    Ok(())
}

/// Parse `500ms`, `10s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 500ms, 10s, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown unit {u:?} in {s:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a valid duration"));
    }
    // Checked: a huge number of seconds (`99999999999999999999`, `6000000000000000h`) is
    // an error to report, not a panic.
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is too long to be a duration"))
}

/// `30s`, `1.5s`, `2m`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => super::parse_duration(&n.to_string()),
            Raw::S(s) => super::parse_duration(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThresholdSpec;

    const SYSCALL_P99: ThresholdSpec =
        ThresholdSpec::number("syscall_p99_ms", 100.0, "ms", 0.0, f64::MAX, "");
    const RUNQ_P99: ThresholdSpec =
        ThresholdSpec::number("runq_p99_ms", 5.0, "ms", 0.0, f64::MAX, "");
    const DISK_SYNC: ThresholdSpec =
        ThresholdSpec::number("disk_sync_p99_ms", 50.0, "ms", 0.0, f64::MAX, "");
    const ERR_PCT: ThresholdSpec =
        ThresholdSpec::number("syscall_error_pct", 1.0, "%", 0.0, 100.0, "");
    const DISK_MIN: ThresholdSpec = ThresholdSpec::count("disk_min_samples", 20, "requests", "");
    const BENIGN: ThresholdSpec = ThresholdSpec::list("benign_errnos", &["EAGAIN"], "");

    /// The thresholds of a few rules, as a frontend builds them from its rules.
    fn rules() -> ThresholdRegistry {
        let mut r = ThresholdRegistry::default();
        r.add(
            "test",
            &[SYSCALL_P99, RUNQ_P99, DISK_SYNC, ERR_PCT, DISK_MIN, BENIGN],
        );
        r
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_defaults_file_env() {
        let dir = std::env::temp_dir().join(format!("kerno-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.yaml");
        std::fs::write(
            &file,
            "duration: 20s\noutput: json\nthresholds:\n  syscall_p99_ms: 250\n  runq_p99_ms: 7\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &env(&[]), &rules()).unwrap();
        assert_eq!(c.duration, Duration::from_secs(20));
        assert_eq!(c.output, "json");
        assert_eq!(c.thresholds.number(&SYSCALL_P99), 250.0);
        assert_eq!(
            c.thresholds.number(&DISK_SYNC),
            50.0,
            "untouched keys keep defaults"
        );

        let e = env(&[
            ("KERNO_DURATION", "5s"),
            ("KERNO_THRESHOLD_RUNQ_P99_MS", "9"),
        ]);
        let c = Config::load(Some(&file), &e, &rules()).unwrap();
        assert_eq!(c.duration, Duration::from_secs(5), "env beats file");
        assert_eq!(c.thresholds.number(&RUNQ_P99), 9.0, "env beats file");
        assert_eq!(
            c.thresholds.number(&SYSCALL_P99),
            250.0,
            "file beats defaults"
        );

        let e = env(&[("KERNO_CONFIG", file.to_str().unwrap())]);
        assert_eq!(Config::load(None, &e, &rules()).unwrap().output, "json");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn findings_window_from_file_and_env_with_its_range() {
        let c = Config::from_yaml("agent:\n  findings_window: 10s\n", "x.yaml", &rules()).unwrap();
        assert_eq!(c.agent.findings_window, Duration::from_secs(10));
        assert_eq!(
            Config::default().agent.findings_window,
            Duration::from_secs(30)
        );
        let c = Config::load(None, &env(&[("KERNO_FINDINGS_WINDOW", "2m")]), &rules()).unwrap();
        assert_eq!(c.agent.findings_window, Duration::from_secs(120));
        for bad in [
            "agent:\n  findings_window: 0s\n",
            "agent:\n  findings_window: 2h\n",
        ] {
            let err = Config::from_yaml(bad, "x.yaml", &rules()).unwrap_err();
            assert!(err.to_string().contains("agent.findings_window"), "{err}");
        }
        let err =
            Config::load(None, &env(&[("KERNO_FINDINGS_WINDOW", "soon")]), &rules()).unwrap_err();
        assert!(err.to_string().contains("KERNO_FINDINGS_WINDOW"), "{err}");
    }

    #[test]
    fn errors_name_the_key_or_file() {
        let err = Config::from_yaml("thresholds:\n  nope_ms: 3\n", "x.yaml", &rules()).unwrap_err();
        assert!(
            err.to_string().contains("x.yaml") && err.to_string().contains("nope_ms"),
            "{err}"
        );
        let err = Config::from_yaml("duration: 10y\n", "x.yaml", &rules()).unwrap_err();
        assert!(err.to_string().contains("10y"), "{err}");
        let err = Config::from_yaml("duration: 10m\n", "x.yaml", &rules()).unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
        let err = Config::from_yaml(
            "thresholds:\n  syscall_error_pct: 150\n",
            "x.yaml",
            &rules(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("syscall_error_pct"), "{err}");
        let err =
            Config::load(Some(Path::new("/nonexistent/k.yaml")), &env(&[]), &rules()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/k.yaml"), "{err}");
        let mut c = Config::default();
        let err = c
            .apply_env(&env(&[("KERNO_THRESHOLD_BOGUS", "1")]), &rules())
            .unwrap_err();
        assert!(err.to_string().contains("KERNO_THRESHOLD_BOGUS"), "{err}");
        let err = c
            .apply_env(&env(&[("KERNO_THRESHOLD_RUNQ_P99_MS", "fast")]), &rules())
            .unwrap_err();
        assert!(
            err.to_string().contains("KERNO_THRESHOLD_RUNQ_P99_MS"),
            "{err}"
        );
        let err = c
            .apply_env(&env(&[("KERNO_DURATON", "1s")]), &rules())
            .unwrap_err();
        assert!(err.to_string().contains("KERNO_DURATON"), "{err}");
    }

    #[test]
    fn node_name_and_host_root_precedence() {
        let dir = std::env::temp_dir().join(format!("kerno-cfg-node-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.yaml");
        std::fs::write(&file, "node_name: from-file\nhost_root: /host\n").unwrap();
        let c = Config::load(Some(&file), &env(&[]), &rules()).unwrap();
        assert_eq!(c.node_name.as_deref(), Some("from-file"));
        assert_eq!(c.host_root.as_deref(), Some(Path::new("/host")));
        let c = Config::load(Some(&file), &env(&[("NODE_NAME", "downward")]), &rules()).unwrap();
        assert_eq!(
            c.node_name.as_deref(),
            Some("downward"),
            "NODE_NAME beats the file"
        );
        let e = env(&[
            ("NODE_NAME", "downward"),
            ("KERNO_NODE_NAME", "kerno"),
            ("KERNO_HOST_ROOT", "/mnt/host"),
        ]);
        let c = Config::load(Some(&file), &e, &rules()).unwrap();
        assert_eq!(
            c.node_name.as_deref(),
            Some("kerno"),
            "KERNO_NODE_NAME beats NODE_NAME"
        );
        assert_eq!(c.host_root.as_deref(), Some(Path::new("/mnt/host")));
        let err = Config::load(None, &env(&[("KERNO_HOST_ROOT", "host")]), &rules()).unwrap_err();
        assert!(err.to_string().contains("host_root"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
        for huge in ["99999999999999999999", "6000000000000000h", "1e309"] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
        let err =
            Config::from_yaml("duration: 99999999999999999999\n", "x.yaml", &rules()).unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn ai_section_and_its_environment_twins() {
        let c = Config::from_yaml(
            "ai:\n  enabled: true\n  provider: ollama\n  endpoint: http://gpu:11434\n  privacy: redacted\n  timeout: 45s\n  max_tokens: 512\n  cache_ttl: 0s\n  rate_per_minute: 3\n",
            "x.yaml",
            &rules(),
        )
        .unwrap();
        assert!(c.ai.enabled);
        assert_eq!(c.ai.provider, AiProvider::Ollama);
        assert_eq!(c.ai.model(), "llama3.1", "the provider's default model");
        assert_eq!(c.ai.privacy, AiPrivacy::Redacted);
        assert_eq!(c.ai.timeout, Duration::from_secs(45));
        assert_eq!((c.ai.max_tokens, c.ai.rate_per_minute), (512, 3));
        assert!(c.ai.cache_ttl.is_zero());
        let mut c = Config::default();
        c.apply_env(
            &env(&[
                ("KERNO_AI_ENABLED", "1"),
                ("KERNO_AI_PROVIDER", "openai"),
                ("KERNO_AI_MODEL", "qwen2.5"),
                ("KERNO_AI_ENDPOINT", "http://vllm:8000/v1"),
                ("KERNO_AI_PRIVACY", "full"),
                ("KERNO_AI_API_KEY", "sk-never-stored"),
                ("KERNO_AI_API_KEY_FILE", "/run/secrets/key"),
                ("KERNO_AI_TIMEOUT", "10s"),
                ("KERNO_AI_MAX_TOKENS", "64"),
                ("KERNO_AI_CACHE_TTL", "5m"),
                ("KERNO_AI_RATE_PER_MINUTE", "20"),
                ("KERNO_AI_CACHE_DIR", "/var/cache/kerno"),
            ]),
            &rules(),
        )
        .unwrap();
        assert!(c.ai.enabled && c.ai.provider == AiProvider::Openai);
        assert_eq!(c.ai.model(), "qwen2.5");
        assert_eq!(
            c.ai.api_key_file.as_deref(),
            Some(Path::new("/run/secrets/key"))
        );
        assert!(
            !format!("{c:?}").contains("sk-never-stored")
                && !serde_yaml::to_string(&c)
                    .unwrap()
                    .contains("sk-never-stored"),
            "the key is never part of the configuration"
        );
        for (k, v) in [
            ("KERNO_AI_PROVIDER", "gemini"),
            ("KERNO_AI_PRIVACY", "all"),
            ("KERNO_AI_TIMEOUT", "0s"),
            ("KERNO_AI_MAX_TOKENS", "-1"),
            ("KERNO_AI_RATE_PER_MINUTE", "0"),
            ("KERNO_AI_ENDPOINT", "gpu:11434"),
            ("KERNO_AI_ENABLED", "maybe"),
        ] {
            let err = Config::default()
                .apply_env(&env(&[(k, v)]), &rules())
                .unwrap_err()
                .to_string();
            assert!(err.contains(k) || err.contains("ai."), "{k}={v}: {err}");
        }
        let err = Config::from_yaml("ai:\n  api_key: sk-x\n", "x.yaml", &rules()).unwrap_err();
        assert!(err.to_string().contains("api_key"), "{err}");
    }

    #[test]
    fn list_threshold_from_text() {
        let mut c = Config::default();
        c.set_threshold("benign_errnos", "EAGAIN, EINTR", &rules())
            .unwrap();
        c.set_threshold("disk_min_samples", "20", &rules()).unwrap();
        assert_eq!(c.thresholds.count(&DISK_MIN), 20);
        assert!(
            c.set_threshold("disk_min_samples", "2.5", &rules())
                .is_err()
        );
        assert_eq!(c.thresholds.list(&BENIGN), vec!["EAGAIN", "EINTR"]);
    }
}
