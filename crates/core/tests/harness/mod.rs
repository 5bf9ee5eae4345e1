//! A test world that owns time: a script of client frames and clock steps in, a transcript of
//! every effect out. ULIDs are renamed `#1`, `#2`, … in order of appearance, and times are
//! seconds since the start, so transcripts are short and stable.
#![allow(dead_code)]

use rtcroom_core::*;
use rtcroom_protocol::decode;
use std::collections::HashMap;
use std::fmt::Write;

pub const START: Millis = Millis(1_700_000_000_000);

pub struct World {
    pub engine: Engine<SplitMix64>,
    engine_config: EngineConfig,
    pub now: Millis,
    conns: HashMap<String, ConnId>,
    names: HashMap<String, String>,
    /// Grants the shell would attach to the next join/updateToken of a connection.
    pub grants: HashMap<String, Grant>,
    /// The latest resume key handed to each uid, written `$key(uid)` in scripts and
    /// transcripts.
    pub keys: HashMap<String, String>,
    pub log: String,
}

impl World {
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            engine: Engine::new(cfg.clone(), SplitMix64(42)),
            engine_config: cfg,
            now: START,
            conns: HashMap::new(),
            names: HashMap::new(),
            grants: HashMap::new(),
            keys: HashMap::new(),
            log: String::new(),
        }
    }

    pub fn conn(&mut self, name: &str) -> ConnId {
        let next = self.conns.len() as u64 + 1;
        *self.conns.entry(name.to_owned()).or_insert(ConnId(next))
    }

    fn conn_name(&self, id: ConnId) -> String {
        self.conns
            .iter()
            .find(|(_, c)| **c == id)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("conn{}", id.0))
    }

    /// Run a script; returns the transcript of this script's effects.
    ///
    /// Lines: `open NAME [IP]`, `NAME> {json}`, `close NAME` (clean), `drop NAME`,
    /// `+Ns` (advance the clock N seconds and fire deadlines), `kick APP ROOM UID`,
    /// `shutdown`, `restart`, `restore` (snapshot the engine and restore it into a new one,
    /// as a restarted server does). `$key(UID)` in a line is the latest resume key handed to
    /// UID. Lines starting with `#` are comments.
    pub fn run(&mut self, script: &str) -> String {
        let start = self.log.len();
        for line in script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            writeln!(self.log, "{line}").unwrap();
            let line = &self.with_keys(line);
            if let Some(rest) = line.strip_prefix("open ") {
                let mut parts = rest.split_whitespace();
                let name = parts.next().unwrap();
                let ip = parts.next().unwrap_or("192.0.2.1").to_owned();
                let conn = self.conn(name);
                self.engine
                    .handle(self.now, Input::Open { conn, ip, at: None });
            } else if let Some(name) = line.strip_prefix("close ") {
                let conn = self.conn(name);
                self.engine
                    .handle(self.now, Input::Closed { conn, clean: true });
            } else if let Some(name) = line.strip_prefix("drop ") {
                let conn = self.conn(name);
                self.engine
                    .handle(self.now, Input::Closed { conn, clean: false });
            } else if let Some(secs) = line.strip_prefix('+').and_then(|l| l.strip_suffix('s')) {
                let secs: u64 = secs.parse().unwrap();
                // Step second by second so that deadlines fire at their own time.
                for _ in 0..secs {
                    self.now = self.now.plus_secs(1);
                    self.engine.handle_timeout(self.now);
                    self.flush();
                }
            } else if let Some(rest) = line.strip_prefix("kick ") {
                let p: Vec<&str> = rest.split_whitespace().collect();
                let found = self
                    .engine
                    .kick(self.now, p[0], p[1], p[2], "removed by an operator");
                writeln!(self.log, "  = {found}").unwrap();
            } else if line == "shutdown" {
                self.engine.shutdown(self.now);
            } else if line == "restart" {
                self.engine.restart(self.now);
            } else if line == "restore" {
                self.restore();
            } else if let Some((name, frame)) = line.split_once("> ") {
                let conn = self.conn(name);
                let frame = decode(frame, rtcroom_protocol::DEFAULT_MAX_FRAME);
                let grant = match &frame {
                    Ok(
                        rtcroom_protocol::Request::Join(_)
                        | rtcroom_protocol::Request::UpdateToken(_),
                    ) => self.grants.remove(name).unwrap_or(Grant::Unchecked),
                    _ => Grant::Unchecked,
                };
                self.engine
                    .handle(self.now, Input::Frame { conn, frame, grant });
            } else {
                panic!("unknown script line: {line}");
            }
            self.flush();
        }
        self.log[start..].to_owned()
    }

    /// Replace the engine by one restored from its snapshot, as a restarted server does (a
    /// new entropy seed: a new process draws new randomness).
    pub fn restore(&mut self) {
        self.flush();
        let snapshot = self.engine.snapshot(self.now);
        let cfg = self.engine_config.clone();
        self.engine = Engine::new(cfg, SplitMix64(self.now.0));
        self.engine
            .restore(self.now, snapshot)
            .expect("a fresh engine takes a snapshot");
    }

    /// `$key(uid)` replaced by that uid's latest resume key.
    fn with_keys(&self, line: &str) -> String {
        let mut line = line.to_owned();
        for (uid, key) in &self.keys {
            line = line.replace(&format!("$key({uid})"), key);
        }
        line
    }

    pub fn flush(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            let line = match effect {
                Effect::Send { conn, msg } => {
                    let mut text = msg.to_json();
                    if let rtcroom_protocol::ServerMsg::RespJoin(r) = &msg
                        && !r.resume_key.is_empty()
                    {
                        let key = r.resume_key.expose();
                        self.keys.insert(r.uid.key().to_owned(), key.to_owned());
                        text = text.replace(key, &format!("$key({})", r.uid.key()));
                    }
                    format!("  {}< {}", self.conn_name(conn), text)
                }
                Effect::Close { conn, reason } => {
                    format!(
                        "  {} closed {} {}",
                        self.conn_name(conn),
                        reason.code(),
                        reason.text()
                    )
                }
                Effect::Record(r) => format!("  rec {}", self.record(&r)),
                Effect::Event(_) => continue,
            };
            let line = self.rename_ids(&line);
            writeln!(self.log, "{line}").unwrap();
        }
    }

    fn t(&self, m: Millis) -> String {
        let ms = m.0 - START.0;
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    fn record(&self, r: &Record) -> String {
        match r {
            Record::SessionOpen(s) => format!(
                "session+ {} {}/{} uid={} uname={} ip={} os={} browser={} sdk={} t={}",
                s.session_id,
                s.app_id,
                s.room_id,
                s.user_id,
                s.user_name,
                s.user_ip,
                s.os_name,
                s.browser,
                s.sdk_info,
                self.t(s.join_time)
            ),
            Record::SessionClose(s) => format!(
                "session- {} t={} duration={}s timed_out={}",
                s.session_id,
                self.t(s.leave_time),
                s.duration_secs,
                s.timed_out
            ),
            Record::SubSessionOpen(s) => format!(
                "sub+ {} of {} {}->{} t={}{}",
                s.sub_session_id,
                s.session_id,
                s.user_id,
                s.remote_user_id,
                self.t(s.created),
                if s.ice_ip.is_empty() {
                    String::new()
                } else {
                    format!(" ice={}", s.ice_ip)
                }
            ),
            Record::SubSessionBegin(s) => {
                format!("sub-begin {} t={}", s.sub_session_id, self.t(s.begin_time))
            }
            Record::SubSessionConnect(s) => format!(
                "sub-connect {} t={} {}",
                s.sub_session_id,
                self.t(s.connect_time),
                s.connect_type.as_str()
            ),
            Record::SubSessionFinish(s) => format!(
                "sub- {} t={} duration={}s status={} cost={}",
                s.sub_session_id,
                self.t(s.finish_time),
                s.duration_secs,
                s.status as u8,
                s.cost_cents
            ),
            Record::Quality(q) => format!(
                "quality {} sub={} {}->{} aud_rcv={}kbps/{} vid_rcv={}kbps/{}",
                q.id,
                q.sub_session_id,
                q.user_id,
                q.remote_user_id,
                q.stats.aud_rcv_bitrate,
                q.stats.aud_rcv_lost_rate,
                q.stats.vid_rcv_bitrate,
                q.stats.vid_rcv_lost_rate
            ),
            Record::ClientInfo(i) => format!(
                "info {} uid={} result={} desc={}",
                i.id, i.user_id, i.result, i.desc
            ),
        }
    }

    /// Replace each 26-character ULID by `#n`, numbered in order of first appearance.
    fn rename_ids(&mut self, line: &str) -> String {
        const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let run = chars[i..]
                .iter()
                .take_while(|c| ALPHABET.contains(**c))
                .count();
            let bounded = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
            if run == 26 && bounded {
                let id: String = chars[i..i + 26].iter().collect();
                let next = self.names.len() + 1;
                let name = self
                    .names
                    .entry(id)
                    .or_insert_with(|| format!("#{next}"))
                    .clone();
                out.push_str(&name);
                i += 26;
            } else {
                let n = run.max(1);
                out.extend(&chars[i..i + n]);
                i += n;
            }
        }
        out
    }
}

/// A join frame in the document's form.
pub fn join(room: &str, uid: &str) -> String {
    format!(
        r#"{{"cmd":"join","appId":"10000","token":"t","roomId":"{room}","roomName":"talk-now","uid":"{uid}","uname":"{uid}_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}}"#
    )
}

/// A join frame in the document's form that resumes `uid` with `key` (`$key(uid)` for the
/// key the uid was handed).
pub fn join_with_key(room: &str, uid: &str, key: &str) -> String {
    let j = join(room, uid);
    format!(
        r#"{},"resumeKey":"{key}"}}"#,
        j.strip_suffix('}').expect("a JSON object")
    )
}
