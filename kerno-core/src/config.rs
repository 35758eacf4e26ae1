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
    /// The agent's unix socket, where `kerno doctor` asks for windows.
    pub socket: PathBuf,
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
            socket: PathBuf::from("/run/kerno/agent.sock"),
        }
    }
}

/// Environment variables Kerno reads (besides `KERNO_THRESHOLD_<KEY>` and `NO_COLOR`).
pub const ENV_VARS: [&str; 10] = [
    "KERNO_CONFIG",
    "KERNO_DURATION",
    "KERNO_OUTPUT",
    "KERNO_DOMAINS",
    "KERNO_LISTEN",
    "KERNO_WINDOW",
    "KERNO_SOCKET",
    "KERNO_FAIL_PROBES",
    "KERNO_HOST_ROOT",
    "KERNO_NODE_NAME",
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
                "KERNO_CONFIG" | "KERNO_FAIL_PROBES" => {}
                "KERNO_DURATION" => self.duration = parse_duration(v).map_err(|r| invalid(k, r))?,
                "KERNO_WINDOW" => {
                    self.agent.window = parse_duration(v).map_err(|r| invalid(k, r))?
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
        Ok(())
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
