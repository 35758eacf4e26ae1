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
    /// Where the agent pushes what it measures besides `/metrics`.
    pub export: ExportConfig,
}

/// Export settings (`export:`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// OTLP/HTTP push of the agent's metrics and findings (`export.otlp`).
    pub otlp: OtlpConfig,
}

/// OTLP export (`export.otlp:`): off until `endpoint` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// The receiver's base URL (`http://otel-collector:4318`); `/v1/metrics` and `/v1/logs`
    /// are appended. `None`: no export.
    pub endpoint: Option<String>,
    /// How often metrics are pushed, `1s` to `1h`.
    #[serde(with = "duration_str")]
    pub interval: Duration,
    /// Each request must finish within this, `100ms` to `1m`.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// Extra request headers (e.g. `authorization: Bearer ...` for a hosted backend).
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            headers: std::collections::BTreeMap::new(),
        }
    }
}

impl OtlpConfig {
    /// Check values the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(e) = &self.endpoint {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                return Err(invalid(
                    "export.otlp.endpoint",
                    format!(
                        "{e:?} is not an http:// or https:// URL (example: http://otel-collector:4318)"
                    ),
                ));
            }
        }
        if self.interval < Duration::from_secs(1) || self.interval > Duration::from_secs(3600) {
            return Err(invalid(
                "export.otlp.interval",
                format!(
                    "{} is out of range: use 1s to 1h",
                    format_duration(self.interval)
                ),
            ));
        }
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(60) {
            return Err(invalid(
                "export.otlp.timeout",
                format!(
                    "{} is out of range: use 100ms to 1m",
                    format_duration(self.timeout)
                ),
            ));
        }
        for (k, v) in &self.headers {
            let token = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(invalid(
                    "export.otlp.headers",
                    format!("{k:?} is not an HTTP header name"),
                ));
            }
            if v.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err(invalid(
                    "export.otlp.headers",
                    format!("the value of {k} has a control character"),
                ));
            }
        }
        Ok(())
    }
}

/// Parse `KEY=VALUE,KEY=VALUE` headers (as `OTEL_EXPORTER_OTLP_HEADERS` writes them;
/// values may be percent-encoded, `%2C` for a comma).
pub fn parse_headers(s: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("{item:?} is not KEY=VALUE"));
        };
        out.insert(k.trim().to_string(), percent_decode(v.trim())?);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s:?} has a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
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
    /// Serve `/doctor` (the window's JSON report) on the TCP address too, for `kerno
    /// doctor --cluster`; it answers only requests bearing the token in
    /// `doctor_token_file`.
    pub serve_doctor: bool,
    /// The file holding the bearer token `/doctor` on the TCP address asks for (a mounted
    /// Secret); needed with `serve_doctor`.
    pub doctor_token_file: Option<PathBuf>,
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
            export: ExportConfig::default(),
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
            serve_doctor: false,
            doctor_token_file: None,
        }
    }
}

/// Environment variables Kerno reads (besides `KERNO_THRESHOLD_<KEY>` and `NO_COLOR`). A
/// `KERNO_*` variable not in this list (nor a `KERNO_THRESHOLD_<KEY>` of a declared
/// threshold) is ignored by [`Config::apply_env`] and named by [`unknown_env`], so that a
/// frontend can warn about it: a leftover variable in a DaemonSet's environment must not stop
/// the agent. A variable read outside this module is added here too.
pub const ENV_VARS: &[&str] = &[
    "KERNO_CONFIG",
    "KERNO_DURATION",
    "KERNO_OUTPUT",
    "KERNO_DOMAINS",
    "KERNO_LISTEN",
    "KERNO_WINDOW",
    "KERNO_FINDINGS_WINDOW",
    "KERNO_SOCKET",
    "KERNO_FAIL_PROBES",
    "KERNO_FAIL_SAMPLER",
    "KERNO_HOST_ROOT",
    "KERNO_NODE_NAME",
    "KERNO_SERVE_DOCTOR",
    "KERNO_DOCTOR_TOKEN_FILE",
    "KERNO_AGENTS",
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
    "KERNO_OTLP_ENDPOINT",
    "KERNO_OTLP_INTERVAL",
    "KERNO_OTLP_TIMEOUT",
    "KERNO_OTLP_HEADERS",
];

/// The `KERNO_*` variables in `env` that Kerno does not read: neither in [`ENV_VARS`] nor a
/// `KERNO_THRESHOLD_<KEY>` whose key one of `rules` declares. Each is paired with the
/// closest known name when there is one within two edits (a typo such as
/// `KERNO_DURATON`). [`Config::apply_env`] ignores them; frontends warn once.
pub fn unknown_env(
    env: &[(String, String)],
    rules: &ThresholdRegistry,
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (k, _) in env {
        if !k.starts_with("KERNO_") || ENV_VARS.contains(&k.as_str()) {
            continue;
        }
        if let Some(t) = k.strip_prefix("KERNO_THRESHOLD_") {
            let key = t.to_ascii_lowercase();
            if rules.get(&key).is_some() {
                continue;
            }
            let near = rules
                .keys()
                .into_iter()
                .map(|c| (edit_distance(&key, c), c))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, c)| format!("KERNO_THRESHOLD_{}", c.to_ascii_uppercase()));
            out.push((k.clone(), near));
            continue;
        }
        let near = ENV_VARS
            .iter()
            .map(|c| (edit_distance(k, c), *c))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, c)| c.to_string());
        out.push((k.clone(), near));
    }
    out
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

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
        let mut c: Config = parse_yaml(text).map_err(|message| ConfigError::Parse {
            path: path.into(),
            message,
        })?;
        rules.check(&mut c.thresholds).map_err(|e| {
            let line = match &e {
                ConfigError::Invalid { key, .. } => {
                    key_line(text, key.strip_prefix("thresholds.").unwrap_or(key))
                }
                _ => String::new(),
            };
            ConfigError::Parse {
                path: path.into(),
                message: format!("{line}{e}"),
            }
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

    /// Apply `KERNO_*` variables. A bad value of a known variable is an error naming it; an
    /// unknown variable is ignored (see [`unknown_env`], which names them for a warning).
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
                if rules.get(&t.to_ascii_lowercase()).is_none() {
                    continue; // unknown: named by `unknown_env`
                }
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
                // KERNO_AGENTS is the cluster doctor's target list, read by the command.
                "KERNO_CONFIG" | "KERNO_FAIL_PROBES" | "KERNO_FAIL_SAMPLER"
                | "KERNO_AI_API_KEY" | "KERNO_AGENTS" => {}
                "KERNO_SERVE_DOCTOR" => {
                    self.agent.serve_doctor = parse_bool(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_DOCTOR_TOKEN_FILE" => {
                    self.agent.doctor_token_file = (!v.is_empty()).then(|| PathBuf::from(v))
                }
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
                "KERNO_OTLP_ENDPOINT" => {
                    self.export.otlp.endpoint = (!v.trim().is_empty()).then(|| v.trim().into())
                }
                "KERNO_OTLP_INTERVAL" => {
                    self.export.otlp.interval = parse_duration(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_OTLP_TIMEOUT" => {
                    self.export.otlp.timeout = parse_duration(v).map_err(|r| invalid(k, r))?
                }
                "KERNO_OTLP_HEADERS" => {
                    self.export.otlp.headers = parse_headers(v).map_err(|r| invalid(k, r))?
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
                // Read elsewhere (listed in ENV_VARS), or unknown: named by `unknown_env`.
                _ => {}
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
        if self.agent.serve_doctor && self.agent.doctor_token_file.is_none() {
            return Err(invalid(
                "agent.serve_doctor",
                "needs agent.doctor_token_file (--doctor-token-file): /doctor on the network answers only requests bearing its token".into(),
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
        self.ai.validate()?;
        self.export.otlp.validate()
    }
}

/// Parse a config document with serde-saphyr (safe Rust, bounded: a document with a billion
/// aliases or a deep nesting is refused by its budget, not followed). The message is one
/// line naming the key and the line and column.
fn parse_yaml(text: &str) -> Result<Config, String> {
    serde_saphyr::from_str::<Config>(text).map_err(|e| {
        // The first line is `error: line L column C: message`; the source snippet after it
        // is for a terminal, not for a one-line error.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("").trim();
        let msg = first.strip_prefix("error: ").unwrap_or(first);
        // A bad value's message (`unknown unit ...`, `invalid u32`) names the line, not
        // the key: name the key set on that line too.
        let key = msg
            .strip_prefix("line ")
            .and_then(|r| r.split_once(' '))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .and_then(|n| text.lines().nth(n.wrapping_sub(1)))
            .and_then(|l| l.trim_start().trim_start_matches("- ").split_once(':'))
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !msg.contains(&format!("`{k}`")));
        match key {
            Some(k) => format!("{k}: {msg}"),
            None => msg.to_string(),
        }
    })
}

/// `line N: ` for the first line of `text` that sets `key` (as `key:` at the start of a
/// line), for the errors found after parsing (an unknown threshold key).
fn key_line(text: &str, key: &str) -> String {
    let pat = format!("{key}:");
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(&pat) || t.starts_with(&format!("\"{key}\":"))
        })
        .map(|i| format!("line {}: ", i + 1))
        .unwrap_or_default()
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
    fn serving_doctor_needs_a_token_file() {
        let err =
            Config::from_yaml("agent:\n  serve_doctor: true\n", "x.yaml", &rules()).unwrap_err();
        assert!(err.to_string().contains("agent.doctor_token_file"), "{err}");
        let c = Config::from_yaml(
            "agent:\n  serve_doctor: true\n  doctor_token_file: /etc/kerno/token\n",
            "x.yaml",
            &rules(),
        )
        .unwrap();
        assert!(c.agent.serve_doctor);
        let mut c = Config::default();
        c.apply_env(
            &env(&[
                ("KERNO_SERVE_DOCTOR", "yes"),
                ("KERNO_DOCTOR_TOKEN_FILE", "/t"),
                ("KERNO_AGENTS", "a:9090,b:9090"),
            ]),
            &rules(),
        )
        .unwrap();
        assert_eq!(c.agent.doctor_token_file, Some(PathBuf::from("/t")));
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
            .apply_env(&env(&[("KERNO_THRESHOLD_RUNQ_P99_MS", "fast")]), &rules())
            .unwrap_err();
        assert!(
            err.to_string().contains("KERNO_THRESHOLD_RUNQ_P99_MS"),
            "{err}"
        );
    }

    #[test]
    fn unknown_env_is_ignored_and_named() {
        let e = env(&[
            ("KERNO_DURATON", "1s"),
            ("KERNO_FOO", "1"),
            ("KERNO_THRESHOLD_BOGUS", "1"),
            ("KERNO_THRESHOLD_RUNQ_P99_M", "9"),
            ("KERNO_DURATION", "7s"),
            ("KERNO_THRESHOLD_RUNQ_P99_MS", "8"),
            ("KERNO_AI_API_KEY", "sk-x"),
            ("PATH", "/bin"),
        ]);
        let mut c = Config::default();
        c.apply_env(&e, &rules()).unwrap();
        assert_eq!(c.duration, Duration::from_secs(7), "known ones still apply");
        assert_eq!(c.thresholds.number(&RUNQ_P99), 8.0);
        let unknown = unknown_env(&e, &rules());
        assert_eq!(
            unknown,
            vec![
                ("KERNO_DURATON".into(), Some("KERNO_DURATION".into())),
                ("KERNO_FOO".into(), None),
                ("KERNO_THRESHOLD_BOGUS".into(), None),
                (
                    "KERNO_THRESHOLD_RUNQ_P99_M".into(),
                    Some("KERNO_THRESHOLD_RUNQ_P99_MS".into())
                ),
            ]
        );
        // A known variable with a bad value is still an error naming it.
        let err = Config::default()
            .apply_env(&env(&[("KERNO_DURATION", "soon")]), &rules())
            .unwrap_err();
        assert!(err.to_string().contains("KERNO_DURATION"), "{err}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn yaml_errors_name_key_and_line() {
        for (text, key, line) in [
            ("duraton: 10s\n", "duraton", "line 1"),
            ("agent:\n  window: 5m\n  listn: x\n", "listn", "line 3"),
            (
                "output: json\nthresholds:\n  nope_ms: 3\n",
                "nope_ms",
                "line 3",
            ),
            ("ai:\n  max_tokens: -3\n", "u32", "line 2"),
            ("duration: [1\n", "bracket", "line 1"),
            ("duration: 99999999999999999999\n", "too long", "line 1"),
        ] {
            let err = Config::from_yaml(text, "x.yaml", &rules())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("x.yaml") && err.contains(key) && err.contains(line),
                "{text:?}: {err}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused_quickly() {
        // "Billion laughs": nine levels of nine aliases each.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let deep = format!(
            "thresholds: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        for doc in [bomb, deep] {
            let t = std::time::Instant::now();
            assert!(Config::from_yaml(&doc, "x.yaml", &rules()).is_err());
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        }
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
                && !serde_json::to_string(&c)
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

#[cfg(test)]
mod otlp_tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn otlp_export_from_file_and_env() {
        let rules = ThresholdRegistry::default();
        let c = Config::from_yaml(
            "export:\n  otlp:\n    endpoint: http://collector:4318\n    interval: 30s\n    headers:\n      authorization: Bearer x\n",
            "k.yaml",
            &rules,
        )
        .unwrap();
        let o = &c.export.otlp;
        assert_eq!(o.endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(o.interval, Duration::from_secs(30));
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(o.headers["authorization"], "Bearer x");
        assert_eq!(
            Config::default().export.otlp.endpoint,
            None,
            "off by default"
        );

        let mut c = c.clone();
        c.apply_env(
            &env(&[
                ("KERNO_OTLP_ENDPOINT", "https://otlp.example:4318"),
                ("KERNO_OTLP_INTERVAL", "5s"),
                ("KERNO_OTLP_TIMEOUT", "500ms"),
                ("KERNO_OTLP_HEADERS", "x-tenant=a,api-key=b%2Cc"),
            ]),
            &rules,
        )
        .unwrap();
        let o = &c.export.otlp;
        assert_eq!(o.endpoint.as_deref(), Some("https://otlp.example:4318"));
        assert_eq!(
            (o.interval, o.timeout),
            (Duration::from_secs(5), Duration::from_millis(500))
        );
        assert_eq!(o.headers["api-key"], "b,c");
        assert!(
            !o.headers.contains_key("authorization"),
            "the env replaces the file's headers"
        );

        for (k, v, says) in [
            ("KERNO_OTLP_ENDPOINT", "collector:4318", "not an http"),
            ("KERNO_OTLP_INTERVAL", "0s", "out of range"),
            ("KERNO_OTLP_TIMEOUT", "5m", "out of range"),
            ("KERNO_OTLP_HEADERS", "novalue", "KEY=VALUE"),
            (
                "KERNO_OTLP_HEADERS",
                "bad header=1",
                "not an HTTP header name",
            ),
        ] {
            let err = Config::default()
                .apply_env(&env(&[(k, v)]), &rules)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{k}={v}: {err}");
        }
        let err = Config::from_yaml("export:\n  otlp:\n    endpont: x\n", "k.yaml", &rules)
            .unwrap_err()
            .to_string();
        assert!(err.contains("endpont"), "{err}");
    }
}
