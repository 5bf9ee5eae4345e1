//! The effective configuration as TOML, with every secret replaced by `***` (what
//! `rtcroom check-config` prints), and URLs without their passwords (for messages).

use super::Config;
use anyhow::Context;
use std::fmt::Write as _;

/// Keys whose values are secrets wherever they appear: `[admin] token`, `[[apps]] secret`
/// and `[[apps.keys]] secret`, `[turn] secret`, `[ice] register_secret` and `turn_secret`,
/// `[rtc] ice_servers` credentials. Passwords inside URLs (`[database] url`, `[smtp] url`,
/// monitor targets) are redacted in every string.
const SECRET_KEYS: &[&str] = &[
    "token",
    "secret",
    "register_secret",
    "turn_secret",
    "credential",
    "password",
];

/// What a secret is shown as.
const REDACTED: &str = "***";

/// The configuration as a TOML document (it parses back into the same configuration, but
/// for the secrets), secrets redacted.
pub fn to_redacted_toml(cfg: &Config) -> anyhow::Result<String> {
    let mut table =
        toml::Table::try_from(cfg).context("the configuration does not serialize to TOML")?;
    redact_table(&mut table);
    let mut out = String::new();
    // Plain top-level keys (`apps = []`) before any header, or they would land in the last
    // section; then the sections in the order of config.example.toml, keys in name order.
    let plain: Vec<String> = table
        .iter()
        .filter(|(_, v)| !v.is_table() && !is_array_of_tables(v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut first = toml::Table::new();
    for key in plain {
        if let Some(v) = table.remove(&key) {
            first.insert(key, v);
        }
    }
    write_table(&mut out, &[], &first);
    for section in SECTION_ORDER {
        if let Some(value) = table.remove(*section) {
            let mut one = toml::Table::new();
            one.insert((*section).to_owned(), value);
            write_table(&mut out, &[], &one);
        }
    }
    write_table(&mut out, &[], &table);
    Ok(out.trim_start().to_owned())
}

/// The order of the sections in `config.example.toml`.
const SECTION_ORDER: &[&str] = &[
    "server", "room", "auth", "rtc", "billing", "ice", "turn", "database", "report", "smtp",
    "alerts", "monitor", "admin", "log", "apps",
];

fn redact_table(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        if SECRET_KEYS.contains(&key.as_str())
            && let toml::Value::String(s) = value
            && !s.is_empty()
        {
            *s = REDACTED.to_owned();
            continue;
        }
        redact_value(value);
    }
}

fn redact_value(value: &mut toml::Value) {
    match value {
        toml::Value::String(s) if url_password(s).is_some() => *s = redact_url(s),
        toml::Value::Table(t) => redact_table(t),
        toml::Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// The `user:password@` part of a URL: (where it starts, where `@` is).
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    Some((start, start + at))
}

/// The password of a URL (`scheme://user:password@host/...`), if it has one.
pub fn url_password(url: &str) -> Option<&str> {
    let (start, at) = userinfo(url)?;
    url[start..at].split_once(':').map(|(_, p)| p)
}

/// A URL for messages: its password, if any, replaced by `***`; a URL without one is
/// shown as it is (`mysql://root@host/db`).
pub fn redact_url(url: &str) -> String {
    match (userinfo(url), url_password(url)) {
        (Some((start, at)), Some(_)) => {
            let user = url[start..at].split(':').next().unwrap_or("");
            format!("{}{user}:{REDACTED}{}", &url[..start], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Write `table` (at `path`): its plain keys, then its tables, then its arrays of tables.
/// An array whose items are all tables: written as `[[name]]` blocks.
fn is_array_of_tables(v: &toml::Value) -> bool {
    matches!(v, toml::Value::Array(items) if !items.is_empty() && items.iter().all(toml::Value::is_table))
}

fn write_table(out: &mut String, path: &[String], table: &toml::Table) {
    for (key, value) in table {
        if !value.is_table() && !is_array_of_tables(value) {
            let _ = writeln!(out, "{} = {}", toml_key(key), inline(value));
        }
    }
    for (key, value) in table {
        let inner: Vec<String> = path.iter().cloned().chain([key.clone()]).collect();
        let header = inner
            .iter()
            .map(|k| toml_key(k))
            .collect::<Vec<_>>()
            .join(".");
        if let toml::Value::Table(t) = value {
            let _ = writeln!(out, "\n[{header}]");
            write_table(out, &inner, t);
        } else if is_array_of_tables(value)
            && let toml::Value::Array(items) = value
        {
            for item in items {
                if let toml::Value::Table(t) = item {
                    let _ = writeln!(out, "\n[[{header}]]");
                    write_table(out, &inner, t);
                }
            }
        }
    }
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        quote(key)
    }
}

/// A TOML basic string: JSON's escapes are all valid TOML escapes.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => quote(s),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => {
            let s = f.to_string();
            if s.contains(['.', 'e', 'i', 'n']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        toml::Value::Table(t) => {
            let parts: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), inline(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_only() {
        assert_eq!(
            redact_url("mysql://root:pw@127.0.0.1/db"),
            "mysql://root:***@127.0.0.1/db"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/db"),
            "mysql://root@127.0.0.1/db"
        );
        assert_eq!(redact_url("sqlite:///data/x.db"), "sqlite:///data/x.db");
        assert_eq!(
            redact_url("smtps://a%40b.com:p@ss@smtp.example.com:465"),
            "smtps://a%40b.com:***@smtp.example.com:465"
        );
        assert_eq!(url_password("postgres://u:secret@h/db"), Some("secret"));
        assert_eq!(url_password("postgres://u@h/x@y"), None);
    }

    #[test]
    fn the_toml_parses_back_to_the_same_configuration() {
        let cfg = Config::load_with_env(None, Vec::new()).unwrap();
        let text = to_redacted_toml(&cfg).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(format!("{back:?}"), format!("{cfg:?}"));
    }
}
