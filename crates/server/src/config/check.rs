//! Checks of a whole configuration that no single section can make: placeholders left from
//! the production template, and whether the configuration can serve a call at all.

use super::{IceSection, TurnSection};

/// The word the production template (`deploy/rtcroom.production.toml`) puts where an
/// operator must write a secret of their own.
const PLACEHOLDER: &str = "REPLACE";

/// Refuse a value still holding the production template's placeholder: a secret value
/// `"REPLACE: ..."`, or a URL whose password is `REPLACE`.
pub fn no_placeholders(table: &toml::Table) -> anyhow::Result<()> {
    let mut found = Vec::new();
    walk(table, "", &mut found);
    if let Some((section, key, value)) = found.into_iter().next() {
        let hint = value
            .strip_prefix(PLACEHOLDER)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let at = if section.is_empty() {
            String::new()
        } else {
            format!(" under [{section}]")
        };
        anyhow::bail!(
            "`{key}`{at} is still the production template's placeholder {PLACEHOLDER}: \
             write the real value{hint} in that line (or set it from the environment)"
        );
    }
    Ok(())
}

fn walk(table: &toml::Table, section: &str, found: &mut Vec<(String, String, String)>) {
    for (key, value) in table {
        visit(value, section, key, found);
    }
}

fn visit(value: &toml::Value, section: &str, key: &str, found: &mut Vec<(String, String, String)>) {
    match value {
        toml::Value::String(s) if is_placeholder(s) => {
            found.push((section.to_owned(), key.to_owned(), s.clone()));
        }
        toml::Value::Table(t) => {
            let inner = if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            };
            walk(t, &inner, found);
        }
        toml::Value::Array(items) => {
            for item in items {
                visit(item, section, key, found);
            }
        }
        _ => {}
    }
}

fn is_placeholder(value: &str) -> bool {
    value.starts_with(PLACEHOLDER)
        || super::show::url_password(value).is_some_and(|p| p == PLACEHOLDER)
}

/// In `registry` mode a pair gets a server of the registry. Without the embedded TURN
/// server, the registry starts empty and stays empty unless coturn agents register, so
/// every second member of a room would be refused (result 8). Agents are expected when
/// their secret is configured: `[ice] turn_secret` (coturn's static-auth-secret) or
/// `[ice] register_secret` (agents on other hosts).
pub fn can_serve_a_call(ice: &IceSection, turn: &TurnSection) -> anyhow::Result<()> {
    if ice.mode != "registry" || turn.enabled {
        return Ok(());
    }
    if !ice.turn_secret.is_empty() || !ice.register_secret.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "[turn] enabled = false with [ice] mode = \"registry\" leaves no ICE server to hand out: \
         every call would be refused (result 8) until a coturn agent registers, and none is \
         configured. Change one line: `enabled = true` under [turn] (the embedded TURN \
         server), or `mode = \"static\"` under [ice] (every pair gets [rtc] ice_servers); with \
         coturn servers registering through `rtcroom ice-agent`, set `turn_secret` (coturn's \
         static-auth-secret) or `register_secret` (the agents' secret) under [ice]"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_in_values_and_url_passwords() {
        let table: toml::Table = "[[apps]]\nid = \"1\"\n[[apps.keys]]\nkid = \"k\"\nsecret = \"REPLACE: openssl rand -hex 32\"\n"
            .parse()
            .unwrap();
        let e = no_placeholders(&table).unwrap_err().to_string();
        assert!(e.contains("`secret` under [apps.keys]"), "{e}");
        assert!(e.contains("(openssl rand -hex 32)"), "{e}");
        let table: toml::Table = "[database]\nurl = \"mysql://u:REPLACE@h/db\"\n"
            .parse()
            .unwrap();
        let e = no_placeholders(&table).unwrap_err().to_string();
        assert!(e.contains("`url` under [database]"), "{e}");
        let table: toml::Table =
            "[database]\nurl = \"mysql://u:REPLACED@h/db\"\n[admin]\ntoken = \"xREPLACE\"\n"
                .parse()
                .unwrap();
        assert!(no_placeholders(&table).is_ok());
    }
}
