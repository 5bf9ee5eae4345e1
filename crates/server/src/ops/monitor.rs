//! `rtcroom monitor`: the replacement of the document's `room_server_monitor.py` and
//! `ice_server_monitor.py`. It probes targets (an HTTP health URL, a TCP port, a process by
//! pid file or name), runs a target's restart command when it is down, and mails an alert on
//! each down/up transition.
//!
//! The decisions are the pure [`Watch`] (probe results and time in, actions out), tested on
//! their own; the loop around it only probes, runs commands and sends mail.

use super::mail::{Mailer, mailboxes, notify};
use crate::config::{AlertsSection, MonitorSection, Target};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the watch wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Restart,
    /// Mail that the target went down (`suppressed`: transitions not mailed since the last mail).
    MailDown {
        reason: String,
        suppressed: u32,
    },
    /// Mail that the target is back after `down_secs`.
    MailUp {
        down_secs: u64,
        suppressed: u32,
    },
}

/// The state of one target, driven by probe results and time (seconds).
#[derive(Debug, Clone)]
pub struct Watch {
    failures_before_down: u32,
    restart_every: u64,
    max_mails_per_hour: u32,
    fails: u32,
    down_since: Option<u64>,
    last_restart: Option<u64>,
    mails: Vec<u64>,
    suppressed: u32,
    /// Whether the last down transition was mailed (its recovery is then mailed too).
    down_mailed: bool,
}

impl Watch {
    pub fn new(cfg: &MonitorSection) -> Self {
        Self {
            failures_before_down: cfg.failures_before_down.max(1),
            restart_every: cfg.restart_every_secs,
            max_mails_per_hour: cfg.max_mails_per_hour,
            fails: 0,
            down_since: None,
            last_restart: None,
            mails: Vec::new(),
            suppressed: 0,
            down_mailed: false,
        }
    }

    fn may_mail(&mut self, now: u64) -> bool {
        self.mails.retain(|t| now.saturating_sub(*t) < 3600);
        if self.mails.len() < self.max_mails_per_hour as usize {
            self.mails.push(now);
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// One probe result at `now`.
    pub fn observe(&mut self, now: u64, result: Result<(), String>) -> Vec<Action> {
        let mut actions = Vec::new();
        match result {
            Ok(()) => {
                self.fails = 0;
                if let Some(since) = self.down_since.take() {
                    self.last_restart = None;
                    // A recovery is mailed when its outage was, whatever the rate limit: an
                    // operator who was told "down" must be told "up".
                    if self.down_mailed {
                        self.mails.push(now);
                        actions.push(Action::MailUp {
                            down_secs: now.saturating_sub(since),
                            suppressed: std::mem::take(&mut self.suppressed),
                        });
                    }
                    self.down_mailed = false;
                }
            }
            Err(reason) => {
                self.fails += 1;
                if self.down_since.is_none() && self.fails >= self.failures_before_down {
                    self.down_since = Some(now);
                    self.last_restart = Some(now);
                    actions.push(Action::Restart);
                    self.down_mailed = self.may_mail(now);
                    if self.down_mailed {
                        actions.push(Action::MailDown {
                            reason,
                            suppressed: std::mem::take(&mut self.suppressed),
                        });
                    }
                } else if self.down_since.is_some()
                    && self
                        .last_restart
                        .is_some_and(|t| now.saturating_sub(t) >= self.restart_every)
                {
                    self.last_restart = Some(now);
                    actions.push(Action::Restart);
                }
            }
        }
        actions
    }
}

/// Probe a target once.
pub async fn probe(t: &Target) -> Result<(), String> {
    let deadline = Duration::from_secs(5);
    if let Some(url) = &t.http {
        return tokio::time::timeout(deadline, http_get(url))
            .await
            .map_err(|_| format!("{url} did not answer within 5 s"))?;
    }
    if let Some(addr) = &t.tcp {
        return match tokio::time::timeout(deadline, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
            Err(_) => Err(format!("{addr} did not accept within 5 s")),
        };
    }
    if let Some(path) = &t.pidfile {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let pid: u32 = text
            .trim()
            .parse()
            .map_err(|_| format!("{} holds no pid", path.display()))?;
        return if alive(pid) {
            Ok(())
        } else {
            Err(format!(
                "process {pid} of {} is not running",
                path.display()
            ))
        };
    }
    if let Some(name) = &t.process {
        return if running(name) {
            Ok(())
        } else {
            Err(format!("no process named {name} is running"))
        };
    }
    Err("the target has nothing to probe".into())
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent has not collected it yet.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn running(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
        pid.is_some_and(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
                && alive(pid)
        })
    })
}

/// A GET over plain HTTP/1.1; 2xx is healthy.
async fn http_get(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: rtcroom-monitor\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64];
    let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code = line.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "{url} answered {}",
            line.lines().next().unwrap_or("nothing")
        ))
    }
}

async fn restart(t: &Target) {
    let Some(cmd) = &t.restart else {
        tracing::warn!(target_name = %t.name, "down, and no restart command is configured");
        return;
    };
    tracing::warn!(target_name = %t.name, command = %cmd, "restarting");
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(120), child).await {
        Ok(Ok(out)) if out.status.success() => {
            tracing::info!(target_name = %t.name, "restart command succeeded")
        }
        Ok(Ok(out)) => tracing::error!(
            target_name = %t.name,
            status = %out.status,
            stderr = %String::from_utf8_lossy(&out.stderr),
            "restart command failed"
        ),
        Ok(Err(e)) => {
            tracing::error!(target_name = %t.name, error = %e, "cannot run the restart command")
        }
        Err(_) => {
            tracing::error!(target_name = %t.name, "restart command still running after 120 s; killed")
        }
    }
}

/// Run the monitor until interrupted (or for `rounds` rounds, for tests and cron-style use).
pub async fn run(
    cfg: MonitorSection,
    mailer: Option<Mailer>,
    alerts: &AlertsSection,
    host: String,
    rounds: Option<u64>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cfg.targets.is_empty(),
        "nothing to monitor: add [[monitor.targets]] to the configuration (see config.example.toml)"
    );
    for t in &cfg.targets {
        t.check()?;
    }
    let to = mailboxes(&alerts.recipients, "[alerts] recipients")?;
    if mailer.is_none() || to.is_empty() {
        tracing::warn!(
            "alerts are only logged: set [smtp] url and [alerts] recipients to get mail"
        );
    }
    let mut watches: Vec<Watch> = cfg.targets.iter().map(|_| Watch::new(&cfg)).collect();
    let start = std::time::Instant::now();
    let mut round = 0u64;
    loop {
        for (t, w) in cfg.targets.iter().zip(watches.iter_mut()) {
            let result = probe(t).await;
            let now = start.elapsed().as_secs();
            for action in w.observe(now, result) {
                match action {
                    Action::Restart => restart(t).await,
                    Action::MailDown { reason, suppressed } => {
                        tracing::error!(target_name = %t.name, %reason, critical = true, "target is down");
                        let subject = format!("[rtcroom] DOWN: {} on {host}", t.name);
                        let mut body = format!("{} on {host} is down: {reason}\n", t.name);
                        if let Some(cmd) = &t.restart {
                            body += &format!("The restart command was run: {cmd}\n");
                        }
                        if suppressed > 0 {
                            body += &format!(
                                "{suppressed} earlier transitions were not mailed (rate limit).\n"
                            );
                        }
                        notify(mailer.as_ref(), &to, &subject, body).await;
                    }
                    Action::MailUp {
                        down_secs,
                        suppressed,
                    } => {
                        tracing::info!(target_name = %t.name, down_secs, "target is back");
                        let subject = format!("[rtcroom] UP: {} on {host}", t.name);
                        let mut body =
                            format!("{} on {host} is back after {down_secs} s.\n", t.name);
                        if suppressed > 0 {
                            body += &format!(
                                "{suppressed} transitions were not mailed (rate limit).\n"
                            );
                        }
                        notify(mailer.as_ref(), &to, &subject, body).await;
                    }
                }
            }
        }
        round += 1;
        if rounds.is_some_and(|r| round >= r) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(cfg.interval_secs.max(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        Watch::new(&MonitorSection {
            failures_before_down: 2,
            restart_every_secs: 60,
            max_mails_per_hour: 2,
            ..MonitorSection::default()
        })
    }

    fn down(r: &str) -> Result<(), String> {
        Err(r.into())
    }

    #[test]
    fn one_mail_per_transition() {
        let mut w = watch();
        assert_eq!(w.observe(0, Ok(())), vec![]);
        assert_eq!(
            w.observe(10, down("x")),
            vec![],
            "one failure is not down yet"
        );
        assert_eq!(
            w.observe(20, down("x")),
            vec![
                Action::Restart,
                Action::MailDown {
                    reason: "x".into(),
                    suppressed: 0
                }
            ]
        );
        assert_eq!(w.observe(30, down("x")), vec![], "no mail storm while down");
        assert_eq!(
            w.observe(80, down("x")),
            vec![Action::Restart],
            "restart again after a minute"
        );
        assert_eq!(
            w.observe(90, Ok(())),
            vec![Action::MailUp {
                down_secs: 70,
                suppressed: 0
            }]
        );
        assert_eq!(w.observe(100, Ok(())), vec![]);
    }

    #[test]
    fn flapping_is_rate_limited_and_counted() {
        let mut w = watch();
        let mut mails = 0;
        let mut suppressed_reported = 0;
        for i in 0..10u64 {
            for a in w
                .observe(i * 100, down("x"))
                .into_iter()
                .chain(w.observe(i * 100 + 10, down("x")))
            {
                if matches!(a, Action::MailDown { .. }) {
                    mails += 1;
                }
            }
            for a in w.observe(i * 100 + 20, Ok(())) {
                if let Action::MailUp { suppressed, .. } = a {
                    mails += 1;
                    suppressed_reported += suppressed;
                }
            }
        }
        // A limit of two mails an hour: the first outage and its recovery; the nine later
        // outages are only counted.
        assert_eq!(mails, 2);
        let mut later = Vec::new();
        later.extend(w.observe(5000, down("x")));
        later.extend(w.observe(5010, down("x")));
        assert!(
            later.iter().any(|a| matches!(a, Action::MailDown { suppressed, .. } if *suppressed + suppressed_reported == 9)),
            "{later:?}"
        );
    }
}
