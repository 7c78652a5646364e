//! Settings: built-in defaults < `cairn.toml` < `CAIRN_*` environment variables < flags.
//! The flag/env layer is parsed by clap in `cli.rs`; this module merges it over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Per-env settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    /// A dedicated listener serving this env's client API at the root path.
    pub listen: Option<String>,
    /// The base URL clients reach this env at (absolute, prefix included).
    pub advertised_url: Option<String>,
    /// The last editor of a draft may not release it (Apollo's namespace lock).
    #[serde(default)]
    pub four_eyes: bool,
    /// Emergency publishes may bypass the four-eyes rule.
    #[serde(default)]
    pub emergency_publish: bool,
}

/// A database URL. It may hold a password, so `Debug` shows only where it points.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // postgres://user:password@host/db -> postgres://user:***@host/db
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.0[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                write!(f, "\"{}{user}:***{}\"", &self.0[..scheme + 3], &self.0[at..])
            }
            _ => f.write_str("\"(database URL)\""),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The `envs` key: a list of names, or a table of per-env settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum EnvsSpec {
    List(Vec<String>),
    Table(BTreeMap<String, EnvSettings>),
}

/// `cairn.toml`, every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    listen: Option<String>,
    data: Option<PathBuf>,
    database_url: Option<String>,
    envs: Option<EnvsSpec>,
    default_env: Option<String>,
    advertised_url: Option<String>,
    long_poll_timeout_secs: Option<u64>,
    key_max: Option<usize>,
    value_max: Option<usize>,
    body_max: Option<usize>,
    access_key_skew_secs: Option<u64>,
    log_format: Option<LogFormat>,
    session_idle_secs: Option<u64>,
    session_max_secs: Option<u64>,
    only_granted_create_apps: Option<bool>,
    instances_max_per_app: Option<usize>,
    instances_max_total: Option<usize>,
    instances_expiry_days: Option<u64>,
    audit_max_records: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    body_timeout_secs: Option<u64>,
    max_connections_per_ip: Option<usize>,
}

/// Values from flags or `CAIRN_*` variables; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub database_url: Option<DatabaseUrl>,
    pub envs: Option<Vec<String>>,
    pub default_env: Option<String>,
    pub advertised_url: Option<String>,
    pub long_poll_timeout_secs: Option<u64>,
    pub key_max: Option<usize>,
    pub value_max: Option<usize>,
    pub body_max: Option<usize>,
    pub access_key_skew_secs: Option<u64>,
    pub four_eyes_envs: Option<Vec<String>>,
    pub log_format: Option<LogFormat>,
    pub trusted_proxies: Option<Vec<String>>,
    pub body_timeout_secs: Option<u64>,
    pub max_connections_per_ip: Option<usize>,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: String,
    pub data: PathBuf,
    /// A PostgreSQL database to use instead of the embedded store in `data`.
    pub database_url: Option<DatabaseUrl>,
    /// Envs in display order with their settings.
    pub envs: Vec<(String, EnvSettings)>,
    pub default_env: Option<String>,
    pub advertised_url: Option<String>,
    pub long_poll_timeout_secs: u64,
    pub key_max: usize,
    pub value_max: usize,
    pub body_max: usize,
    pub access_key_skew_secs: u64,
    pub log_format: LogFormat,
    /// Portal sessions end after this many idle seconds.
    pub session_idle_secs: u64,
    /// Portal sessions end this many seconds after sign-in.
    pub session_max_secs: u64,
    /// Only admins and users granted it may create apps in the portal.
    pub only_granted_create_apps: bool,
    /// Most client-instance records kept per (env, client app).
    pub instances_max_per_app: usize,
    /// Most client-instance records kept in all.
    pub instances_max_total: usize,
    /// Instance records not refreshed for this many days are deleted.
    pub instances_expiry_days: u64,
    /// Most audit entries kept; the oldest beyond it are deleted (checked hourly).
    pub audit_max_records: u64,
    /// Peers whose `X-Forwarded-*` headers are believed (reverse proxies); empty: nobody's.
    pub trusted_proxies: Vec<crate::domain::net::IpNet>,
    /// A request body must arrive in full within this many seconds of its headers (else 408).
    pub body_timeout_secs: u64,
    /// Open connections one peer address may hold; more are refused (429) and closed.
    pub max_connections_per_ip: usize,
}

const DEFAULT_ENVS: [&str; 4] = ["DEV", "FAT", "UAT", "PRO"];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "0.0.0.0:8080".into(),
            data: PathBuf::from("./cairn-data"),
            database_url: None,
            envs: DEFAULT_ENVS.iter().map(|e| (e.to_string(), EnvSettings::default())).collect(),
            default_env: None,
            advertised_url: None,
            long_poll_timeout_secs: 60,
            key_max: 128,
            value_max: 20_000,
            body_max: 2 * 1024 * 1024,
            access_key_skew_secs: 60,
            log_format: LogFormat::Text,
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 60 * 60,
            only_granted_create_apps: false,
            instances_max_per_app: 20_000,
            instances_max_total: 200_000,
            instances_expiry_days: 7,
            audit_max_records: 1_000_000,
            trusted_proxies: Vec::new(),
            body_timeout_secs: 10,
            // Far above what a NATed office or a node of pods opens (one long poll and a few
            // fetches per client), far below the process's file-descriptor limit.
            max_connections_per_ip: 2048,
        }
    }
}

fn order_key(name: &str) -> (usize, String) {
    (DEFAULT_ENVS.iter().position(|d| *d == name).unwrap_or(DEFAULT_ENVS.len()), name.to_string())
}

impl Settings {
    /// Reads `path` when given (it must exist) or `./cairn.toml` when present.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Settings, String> {
        let file = match path {
            Some(p) => {
                Some(std::fs::read_to_string(p).map_err(|e| format!("cannot read config file {}: {e}", p.display()))?)
            }
            None => std::fs::read_to_string("cairn.toml").ok(),
        };
        let file: FileSettings = match file {
            Some(text) => toml::from_str(&text).map_err(|e| format!("invalid config file: {e}"))?,
            None => FileSettings::default(),
        };
        Settings::merge(file, overrides)
    }

    /// Merges file settings and overrides over the defaults, then validates.
    pub fn merge(file: FileSettings, o: Overrides) -> Result<Settings, String> {
        let d = Settings::default();
        let mut envs: Vec<(String, EnvSettings)> = match file.envs {
            None => d.envs.clone(),
            Some(EnvsSpec::List(names)) => {
                names.into_iter().map(|n| (n.to_ascii_uppercase(), EnvSettings::default())).collect()
            }
            Some(EnvsSpec::Table(t)) => {
                let mut v: Vec<_> = t.into_iter().map(|(n, s)| (n.to_ascii_uppercase(), s)).collect();
                v.sort_by_key(|(n, _)| order_key(n));
                v
            }
        };
        if let Some(names) = o.envs {
            let old = std::mem::take(&mut envs);
            for n in names.iter().map(|n| n.trim().to_ascii_uppercase()).filter(|n| !n.is_empty()) {
                let s = old.iter().find(|(o, _)| *o == n).map(|(_, s)| s.clone()).unwrap_or_default();
                envs.push((n, s));
            }
        }
        if let Some(four) = o.four_eyes_envs {
            for (name, s) in envs.iter_mut() {
                s.four_eyes = four.iter().any(|f| f.trim().eq_ignore_ascii_case(name));
            }
        }
        for (name, _) in &envs {
            crate::domain::names::normalize_env(name).map_err(|e| e.to_string())?;
        }
        if envs.is_empty() {
            return Err("at least one env must be configured".into());
        }
        let trusted_proxies = o
            .trusted_proxies
            .or(file.trusted_proxies)
            .unwrap_or_default()
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| crate::domain::net::IpNet::parse(p).map_err(|e| format!("trusted_proxies: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let s = Settings {
            trusted_proxies,
            listen: o.listen.or(file.listen).unwrap_or(d.listen),
            data: o.data.or(file.data).unwrap_or(d.data),
            database_url: o.database_url.or(file.database_url.map(DatabaseUrl)).filter(|u| !u.0.trim().is_empty()),
            default_env: o.default_env.or(file.default_env).map(|e| e.to_ascii_uppercase()).filter(|e| !e.is_empty()),
            advertised_url: o.advertised_url.or(file.advertised_url).filter(|u| !u.is_empty()),
            long_poll_timeout_secs: o
                .long_poll_timeout_secs
                .or(file.long_poll_timeout_secs)
                .unwrap_or(d.long_poll_timeout_secs),
            key_max: o.key_max.or(file.key_max).unwrap_or(d.key_max),
            value_max: o.value_max.or(file.value_max).unwrap_or(d.value_max),
            body_max: o.body_max.or(file.body_max).unwrap_or(d.body_max),
            access_key_skew_secs: o
                .access_key_skew_secs
                .or(file.access_key_skew_secs)
                .unwrap_or(d.access_key_skew_secs),
            log_format: o.log_format.or(file.log_format).unwrap_or(d.log_format),
            session_idle_secs: file.session_idle_secs.unwrap_or(d.session_idle_secs),
            session_max_secs: file.session_max_secs.unwrap_or(d.session_max_secs),
            only_granted_create_apps: file.only_granted_create_apps.unwrap_or(d.only_granted_create_apps),
            instances_max_per_app: file.instances_max_per_app.unwrap_or(d.instances_max_per_app),
            instances_max_total: file.instances_max_total.unwrap_or(d.instances_max_total),
            instances_expiry_days: file.instances_expiry_days.unwrap_or(d.instances_expiry_days),
            audit_max_records: file.audit_max_records.unwrap_or(d.audit_max_records).max(1),
            body_timeout_secs: o.body_timeout_secs.or(file.body_timeout_secs).unwrap_or(d.body_timeout_secs),
            max_connections_per_ip: o
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(d.max_connections_per_ip),
            envs,
        };
        if !(1..=90).contains(&s.long_poll_timeout_secs) {
            return Err(format!(
                "long_poll_timeout_secs is {}; it must be 1..=90 (clients time out after 90 s)",
                s.long_poll_timeout_secs
            ));
        }
        if s.body_timeout_secs == 0 {
            return Err("body_timeout_secs is 0; it must be at least 1 second".into());
        }
        if s.max_connections_per_ip == 0 {
            return Err("max_connections_per_ip is 0; it must be at least 1".into());
        }
        if let Some(def) = &s.default_env {
            if !s.envs.iter().any(|(n, _)| n == def) {
                return Err(format!("default_env {def} is not one of the configured envs"));
            }
        }
        Ok(s)
    }

    /// Settings of one env.
    pub fn env(&self, name: &str) -> Option<&EnvSettings> {
        self.envs.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let file: FileSettings = toml::from_str(
            "listen = \"127.0.0.1:1\"\nlong_poll_timeout_secs = 30\n[envs.PRO]\nlisten = \"0.0.0.0:8084\"\nfour_eyes = true\n[envs.dev]\n",
        )
        .unwrap();
        let s = Settings::merge(file, Overrides { listen: Some("127.0.0.1:2".into()), ..Default::default() }).unwrap();
        assert_eq!(s.listen, "127.0.0.1:2");
        assert_eq!(s.long_poll_timeout_secs, 30);
        assert_eq!(s.envs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["DEV", "PRO"]);
        assert!(s.env("PRO").unwrap().four_eyes);
        assert_eq!(s.env("PRO").unwrap().listen.as_deref(), Some("0.0.0.0:8084"));
    }

    #[test]
    fn connection_limits_come_from_the_file_and_flags_and_zero_is_refused() {
        let d = Settings::default();
        assert_eq!((d.body_timeout_secs, d.max_connections_per_ip), (10, 2048));
        let file: FileSettings = toml::from_str("body_timeout_secs = 3\nmax_connections_per_ip = 50\n").unwrap();
        let s = Settings::merge(file.clone(), Overrides::default()).unwrap();
        assert_eq!((s.body_timeout_secs, s.max_connections_per_ip), (3, 50));
        let o = Overrides { max_connections_per_ip: Some(20_000), ..Default::default() };
        assert_eq!(Settings::merge(file, o).unwrap().max_connections_per_ip, 20_000);
        let zero = Overrides { body_timeout_secs: Some(0), ..Default::default() };
        assert!(Settings::merge(FileSettings::default(), zero).unwrap_err().contains("body_timeout_secs"));
    }

    #[test]
    fn the_database_url_comes_from_the_file_or_flags_and_debug_hides_its_password() {
        assert_eq!(Settings::default().database_url, None);
        let file: FileSettings = toml::from_str("database_url = \"postgres://cairn:pw@db/cairn\"\n").unwrap();
        let s = Settings::merge(file.clone(), Overrides::default()).unwrap();
        assert_eq!(s.database_url, Some(DatabaseUrl("postgres://cairn:pw@db/cairn".into())));
        let flag = Overrides { database_url: Some(DatabaseUrl("postgres://other@db2/x".into())), ..Default::default() };
        assert_eq!(Settings::merge(file, flag).unwrap().database_url.unwrap().0, "postgres://other@db2/x");
        let shown = format!("{:?}", s);
        assert!(shown.contains("postgres://cairn:***@db/cairn") && !shown.contains(":pw@"), "{shown}");
        let empty = Overrides { database_url: Some(DatabaseUrl(" ".into())), ..Default::default() };
        assert_eq!(Settings::merge(FileSettings::default(), empty).unwrap().database_url, None);
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Settings::merge(
            FileSettings::default(),
            Overrides { long_poll_timeout_secs: Some(120), ..Default::default() },
        )
        .unwrap_err();
        assert!(err.contains("1..=90"), "{err}");
        let err = Settings::merge(
            FileSettings::default(),
            Overrides { default_env: Some("QA".into()), ..Default::default() },
        )
        .unwrap_err();
        assert!(err.contains("QA"), "{err}");
        assert!(toml::from_str::<FileSettings>("lissten = 1").is_err());
    }

    #[test]
    fn trusted_proxies_parse_from_the_file_and_flags() {
        let file: FileSettings = toml::from_str("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]").unwrap();
        let s = Settings::merge(file.clone(), Overrides::default()).unwrap();
        assert_eq!(s.trusted_proxies.len(), 2);
        assert!(s.trusted_proxies[0].contains("10.2.3.4".parse().unwrap()));
        let s =
            Settings::merge(file, Overrides { trusted_proxies: Some(vec!["192.0.2.1".into()]), ..Default::default() })
                .unwrap();
        assert_eq!(s.trusted_proxies.len(), 1, "a flag replaces the file's list");
        assert!(Settings::default().trusted_proxies.is_empty(), "nobody is trusted by default");
        let err = Settings::merge(
            FileSettings::default(),
            Overrides { trusted_proxies: Some(vec!["proxy.local".into()]), ..Default::default() },
        )
        .unwrap_err();
        assert!(err.contains("trusted_proxies") && err.contains("proxy.local"), "{err}");
    }
}
