//! Test harness: a fresh, uniquely named database per test on each real backend, dropped
//! afterwards, and builders for the records the engine emits during a call.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod private_mariadb;

use chrono::NaiveDateTime;
use rtcroom_core::{
    ClientInfo, Millis, Quality, Record, SessionClose, SessionOpen, SubSessionBegin,
    SubSessionConnect, SubSessionFinish, SubSessionOpen, SubStatus,
};
use rtcroom_protocol::{ConnectType, QualityStats};
use rtcroom_store::{SessionDetail, Store, StoreOptions};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use ulid::Ulid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

/// A number no other test of this run or of another run shares: clock, process and a
/// counter.
pub fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos << 24)
        ^ (u128::from(std::process::id()) << 12)
        ^ u128::from(N.fetch_add(1, Ordering::Relaxed))
}

fn unique_name() -> String {
    format!("rtcroom_t_{:x}", unique() & ((1 << 100) - 1))
}

/// Starts a machine service that is down (testing.md's start commands), and waits for it.
fn ensure_service(port: u16, start: &str) {
    let addr = format!("127.0.0.1:{port}");
    let up = || TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok();
    if up() {
        return;
    }
    let status = Command::new("sh").arg("-c").arg(start).status();
    assert!(status.is_ok_and(|s| s.success()), "could not run: {start}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up() {
        assert!(
            Instant::now() < deadline,
            "service on {addr} did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let name = unique_name();
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("data").join(format!("{name}.db"));
                (format!("sqlite://{}", path.display()), Some(dir))
            }
            Backend::MySql => {
                ensure_service(
                    3306,
                    "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
                );
                (format!("mysql://root@127.0.0.1:3306/{name}"), None)
            }
            Backend::Postgres => {
                ensure_service(
                    5432,
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
                );
                (format!("postgres://postgres@127.0.0.1:5432/{name}"), None)
            }
        };
        Store::create_database(&url).await.unwrap();
        TestDb {
            url,
            backend,
            _dir: dir,
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url, &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            return; // the temp dir goes with it
        }
        // Drop runs inside the test's runtime, which cannot block on a future: use a
        // thread with a runtime of its own.
        let url = self.url.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(Store::drop_database(&url))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.url);
        }
    }
}

/// `"2024-05-01 23:59:30"` or with `.fff`, UTC.
pub fn at(s: &str) -> Millis {
    let fmt = if s.contains('.') {
        "%Y-%m-%d %H:%M:%S%.f"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let t = NaiveDateTime::parse_from_str(s, fmt).unwrap();
    Millis(u64::try_from(t.and_utc().timestamp_millis()).unwrap())
}

pub fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(at(s).0 as i64).unwrap()
}

/// Deterministic, time-ordered ids for the records of a test.
#[derive(Debug)]
pub struct Ids(u128);

impl Ids {
    pub fn new() -> Self {
        // A random start keeps two tests (or two runs) from sharing ids.
        Ids((unique() & ((1 << 70) - 1)) << 8)
    }
    pub fn next(&mut self, t: Millis) -> Ulid {
        self.0 += 1;
        Ulid::from_parts(t.0, self.0)
    }
}

/// One member in a room, as the engine records it.
#[derive(Debug, Clone)]
pub struct Member {
    pub session_id: Ulid,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    pub join: Millis,
}

pub fn join(ids: &mut Ids, app: &str, room: &str, uid: &str, t: Millis) -> (Member, Record) {
    let m = Member {
        session_id: ids.next(t),
        app_id: app.into(),
        room_id: room.into(),
        user_id: uid.into(),
        join: t,
    };
    let r = Record::SessionOpen(SessionOpen {
        session_id: m.session_id,
        app_id: app.into(),
        room_id: room.into(),
        user_id: uid.into(),
        user_name: format!("name of {uid}").into(),
        user_type: 1,
        talk_type: 2,
        user_ip: "203.0.113.7".into(),
        os_name: "Linux".into(),
        browser: "Chrome 120".into(),
        sdk_info: "web 1.0".into(),
        join_time: t,
    });
    (m, r)
}

pub fn leave(m: &Member, t: Millis, timed_out: bool) -> Record {
    Record::SessionClose(SessionClose {
        session_id: m.session_id,
        leave_time: t,
        duration_secs: t.secs_since(m.join),
        timed_out,
    })
}

pub fn open_sub(ids: &mut Ids, from: &Member, to: &Member, t: Millis) -> (Ulid, Record) {
    let id = ids.next(t);
    let r = Record::SubSessionOpen(SubSessionOpen {
        sub_session_id: id,
        session_id: from.session_id,
        app_id: from.app_id.as_str().into(),
        room_id: from.room_id.as_str().into(),
        user_id: from.user_id.as_str().into(),
        remote_user_id: to.user_id.as_str().into(),
        remote_user_name: format!("name of {}", to.user_id).into(),
        remote_user_ip: "198.51.100.9".into(),
        ice_ip: "192.0.2.1".into(),
        created: t,
    });
    (id, r)
}

pub fn begin(id: Ulid, t: Millis) -> Record {
    Record::SubSessionBegin(SubSessionBegin {
        sub_session_id: id,
        begin_time: t,
    })
}

pub fn connect(id: Ulid, t: Millis, ty: ConnectType) -> Record {
    Record::SubSessionConnect(SubSessionConnect {
        sub_session_id: id,
        connect_time: t,
        connect_type: ty,
    })
}

pub fn finish(id: Ulid, t: Millis, secs: u64, status: SubStatus, cost: u64) -> Record {
    Record::SubSessionFinish(SubSessionFinish {
        sub_session_id: id,
        finish_time: t,
        duration_secs: secs,
        status,
        cost_cents: cost,
    })
}

pub fn report(
    ids: &mut Ids,
    sub: Ulid,
    from: &Member,
    to: &Member,
    t: Millis,
    aud_bitrate: i64,
    loss: f32,
) -> Record {
    Record::Quality(Quality {
        id: ids.next(t),
        sub_session_id: sub,
        session_id: from.session_id,
        user_id: from.user_id.as_str().into(),
        remote_user_id: to.user_id.as_str().into(),
        create_time: t,
        stats: QualityStats {
            aud_send_lost_rate: 0.5,
            aud_send_bitrate: 40,
            aud_rcv_lost_rate: loss,
            aud_rcv_bitrate: aud_bitrate,
            vid_send_lost_rate: 1.25,
            vid_send_bitrate: 600,
            send_width: 640,
            send_height: 480,
            send_framerate_sent: 30,
            send_codec: "VP8".into(),
            vid_rcv_lost_rate: loss * 2.0,
            vid_rcv_bitrate: aud_bitrate * 10,
            recv_width: 320,
            recv_height: 240,
            recv_framerate_recv: 25,
            recv_codec: "H264".into(),
        },
    })
}

pub fn info(ids: &mut Ids, m: &Member, t: Millis, result: i64, desc: &str) -> Record {
    Record::ClientInfo(ClientInfo {
        id: ids.next(t),
        session_id: m.session_id,
        app_id: m.app_id.as_str().into(),
        room_id: m.room_id.as_str().into(),
        user_id: m.user_id.as_str().into(),
        result,
        desc: desc.into(),
        data1: Some(r#"{"ice":"turn:192.0.2.1"}"#.into()),
        data2: None,
        create_time: t,
    })
}

/// The ids of one two-member call.
#[derive(Debug, Clone)]
pub struct Call {
    pub a: Member,
    pub b: Member,
    /// a→b and b→a.
    pub ab: Ulid,
    pub ba: Ulid,
}

/// A complete call of `talk` seconds between `a` and `b` in `room`, starting at `t0`: both
/// directions connect over TURN at t0+3 s, each side reports stats every 15 s (audio
/// receive bitrate 30, 40, 50, … with loss 0.0, 0.5, 1.0, …), `b` leaves, then `a`.
/// Cost follows the default prices: TURN 1 cent per started minute.
pub fn call(
    ids: &mut Ids,
    app: &str,
    room: &str,
    a: &str,
    b: &str,
    t0: Millis,
    talk: u64,
) -> (Call, Vec<Record>) {
    let mut out = Vec::new();
    let (ma, r) = join(ids, app, room, a, t0);
    out.push(r);
    let (mb, r) = join(ids, app, room, b, t0.plus_secs(1));
    out.push(r);
    let met = t0.plus_secs(1);
    let (ab, r) = open_sub(ids, &ma, &mb, met);
    out.push(r);
    let (ba, r) = open_sub(ids, &mb, &ma, met);
    out.push(r);
    out.push(begin(ab, Millis(t0.0 + 2000)));
    out.push(begin(ba, Millis(t0.0 + 2500)));
    let up = t0.plus_secs(3);
    out.push(connect(ab, up, ConnectType::Turn));
    out.push(connect(ba, Millis(up.0 + 100), ConnectType::Turn));
    let mut k = 0;
    let mut t = up.plus_secs(15);
    while t < up.plus_secs(talk) {
        out.push(report(ids, ab, &ma, &mb, t, 30 + 10 * k, 0.5 * k as f32));
        out.push(report(
            ids,
            ba,
            &mb,
            &ma,
            Millis(t.0 + 1),
            30 + 10 * k,
            0.5 * k as f32,
        ));
        k += 1;
        t = t.plus_secs(15);
    }
    let end = up.plus_secs(talk);
    let cost = talk.div_ceil(60);
    out.push(finish(ab, end, talk, SubStatus::ConnectedLeft, cost));
    out.push(finish(ba, end, talk, SubStatus::ConnectedLeft, cost));
    out.push(leave(&mb, end, false));
    out.push(leave(&ma, end.plus_secs(1), false));
    (
        Call {
            a: ma,
            b: mb,
            ab,
            ba,
        },
        out,
    )
}

/// A [`call`] of `talk` seconds between alice and bob in app1's room1, starting at
/// 2024-05-01 10:00:00.
pub fn alice_and_bob(ids: &mut Ids, talk: u64) -> (Call, Vec<Record>) {
    call(
        ids,
        "app1",
        "room1",
        "alice",
        "bob",
        at("2024-05-01 10:00:00"),
        talk,
    )
}

/// How many of `recs` are quality reports.
pub fn quality_reports(recs: &[Record]) -> usize {
    recs.iter()
        .filter(|r| matches!(r, Record::Quality(_)))
        .count()
}

/// The session of `m` as `store` reads it back; it must be there.
pub async fn session_of(store: &Store, m: &Member) -> SessionDetail {
    store
        .session(&m.session_id.to_string())
        .await
        .unwrap()
        .unwrap()
}
