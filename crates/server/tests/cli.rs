//! The command line as an operator meets it, through the real binary: `check-config` shows
//! no secret and refuses what `serve` refuses, commands run from any directory find the
//! server's data directory and database (and create none to read from), output into a
//! closed pipe ends quietly, errors say each cause once, logs carry no colour codes off a
//! terminal, secret files are private, and digits from the environment are strings.

mod common;

use common::{Scratch, Server, http, join, rtcroom_command};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `rtcroom ARGS` in `cwd` with `env` only.
fn rtcroom(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = rtcroom_command(cwd);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the rtcroom binary runs")
}

/// Every secret the configuration has, each a value no default contains.
const SECRETS: &[&str] = &[
    "admin-token-5f1e",
    "app-secret-77aa",
    "app-key-secret-0c3d",
    "db-password-91b2",
    "smtp-password-e4f0",
    "turn-secret-2b8c",
    "register-secret-6d19",
    "coturn-secret-a3e7",
    "ice-credential-4c55",
];

const EVERY_SECRET: &str = r#"
[admin]
token = "admin-token-5f1e"

[[apps]]
id = "10000"
secret = "app-secret-77aa"
domains = ["localhost"]

[[apps]]
id = "20000"
domains = ["example.com"]
[[apps.keys]]
kid = "k1"
secret = "app-key-secret-0c3d"

[database]
url = "mysql://rtcroom:db-password-91b2@127.0.0.1:3306/rtc_room_server"

[smtp]
url = "smtps://ops%40example.com:smtp-password-e4f0@smtp.example.com:465"

[turn]
secret = "turn-secret-2b8c"

[ice]
register_secret = "register-secret-6d19"
turn_secret = "coturn-secret-a3e7"

[[rtc.ice_servers]]
urls = ["turn:turn.example.com:3478"]
username = "static-user"
credential = "ice-credential-4c55"
"#;

#[test]
fn check_config_prints_the_configuration_as_toml_without_a_secret() {
    let dir = Scratch::new("cli-secrets");
    let file = dir.0.join("rtcroom.toml");
    std::fs::write(&file, EVERY_SECRET).unwrap();
    let out = rtcroom(
        &dir.0,
        &["check-config", "--config", file.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} is printed:\n{text}");
    }
    // It is TOML, with what is not secret shown as it is.
    let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(parsed["admin"]["token"].as_str(), Some("***"));
    assert_eq!(
        parsed["database"]["url"].as_str(),
        Some("mysql://rtcroom:***@127.0.0.1:3306/rtc_room_server")
    );
    assert_eq!(parsed["apps"][1]["keys"][0]["kid"].as_str(), Some("k1"));
    assert_eq!(
        parsed["rtc"]["ice_servers"][0]["username"].as_str(),
        Some("static-user")
    );
    assert_eq!(
        parsed["server"]["data_dir"].as_str(),
        Some(dir.0.join("data").to_str().unwrap()),
        "the data directory next to the file"
    );

    // Secrets from the environment are hidden the same way.
    let out = rtcroom(
        &dir.0,
        &["check-config"],
        &[
            ("RTCROOM_ADMIN_TOKEN", "987654"),
            ("RTCROOM_TURN_SECRET", "env-turn-8a"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("987654") && !stdout(&out).contains("env-turn-8a"));
}

/// `serve --config FILE` with free ports: its status and standard error once it exited.
/// A configuration it accepted would keep it running: it is stopped after a bound and
/// the test fails on its status.
fn serve_refusal(cwd: &Path, file: &Path) -> (bool, String) {
    let mut child = rtcroom_command(cwd)
        .arg("serve")
        .arg("--config")
        .arg(file)
        .env("RTCROOM_SERVER_LISTEN", "127.0.0.1:0")
        .env("RTCROOM_TURN_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), stderr(&out))
}

#[test]
fn check_config_refuses_what_serve_refuses_with_the_same_message() {
    let dir = Scratch::new("cli-refused");
    let production =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rtcroom.production.toml");
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        (
            "time",
            dir.0.join("time.toml"),
            "[report] time \"25:00\" must be HH:MM",
        ),
        (
            "zone",
            dir.0.join("zone.toml"),
            "\"Mars/Base\" is not a time zone",
        ),
        ("template", production, "placeholder REPLACE"),
        (
            "no-ice",
            dir.0.join("no-ice.toml"),
            "`enabled = true` under [turn]",
        ),
    ];
    std::fs::write(&cases[0].1, "[report]\ntime = \"25:00\"\n").unwrap();
    std::fs::write(&cases[1].1, "[report]\ntimezone = \"Mars/Base\"\n").unwrap();
    std::fs::write(&cases[3].1, "[turn]\nenabled = false\n").unwrap();
    for (name, file, expected) in &cases {
        let out = rtcroom(
            &dir.0,
            &["check-config", "--config", file.to_str().unwrap()],
            &[],
        );
        let check = stderr(&out);
        assert!(!out.status.success(), "{name}: check-config accepted it");
        assert_eq!(out.status.code(), Some(1), "{name}: {check}");
        assert!(check.contains(expected), "{name}: {check}");
        assert_eq!(stdout(&out), "", "{name}: nothing printed on refusal");
        let (served, serve) = serve_refusal(&dir.0, file);
        assert!(!served, "{name}: serve accepted it");
        assert_eq!(serve, check, "{name}: the same message from serve");
    }
}

/// A server as an operator runs it: a configuration file in `conf/` naming a relative
/// data directory, started from `run/`.
struct Deployed {
    _dir: Scratch,
    config: std::path::PathBuf,
    data_dir: std::path::PathBuf,
    elsewhere: std::path::PathBuf,
    server: Server,
}

fn deployed(name: &str, env: &[(&str, &str)]) -> Deployed {
    let dir = Scratch::new(name);
    let conf = dir.dir("conf");
    let config = conf.join("rtcroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"state\"\n\n[admin]\ntoken = \"adm\"\n",
    )
    .unwrap();
    let data_dir = conf.join("state");
    let server = Server::start_from_file(&config, &dir.dir("run"), &data_dir, env);
    let elsewhere = dir.dir("elsewhere");
    Deployed {
        _dir: dir,
        config,
        data_dir,
        elsewhere,
        server,
    }
}

#[tokio::test]
async fn commands_from_another_directory_use_the_server_s_data() {
    let d = deployed("cli-elsewhere", &[]);
    let config = d.config.to_str().unwrap();
    assert!(
        d.data_dir.join("demo-app.secret").exists(),
        "data_dir is taken from the file's folder, not from where serve ran"
    );

    // A token minted from elsewhere, with --config or RTCROOM_CONFIG, is the server's.
    for (room, args, env) in [
        (
            "r1",
            vec![
                "token", "--app", "10000", "--uid", "alice", "--config", config,
            ],
            vec![],
        ),
        (
            "r2",
            vec!["token", "--app", "10000", "--uid", "alice"],
            vec![("RTCROOM_CONFIG", config)],
        ),
    ] {
        let out = rtcroom(&d.elsewhere, &args, &env);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let token = stdout(&out).trim().to_owned();
        let mut a = d.server.client().await;
        let mut j = join(room, "alice", "Alice");
        j["token"] = serde_json::json!(token);
        a.send(j).await;
        assert_eq!(
            a.expect("respJoin").await["result"],
            0,
            "{args:?}: accepted"
        );
    }

    // Without the configuration: an error that says what to pass, and no secret made up.
    let out = rtcroom(&d.elsewhere, &["token", "--app", "10000"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--config FILE"), "{}", stderr(&out));
    assert!(stderr(&out).contains("RTCROOM_CONFIG"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    // The records of the server's database, read from elsewhere.
    let today = chrono::Utc::now().date_naive().to_string();
    let out = rtcroom(
        &d.elsewhere,
        &["records", "day", &today, "--config", config],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).trim_start().starts_with('['),
        "{}",
        stdout(&out)
    );

    // Without it: no database is made up to read from, and the error says what to do.
    for args in [
        vec!["records", "day", today.as_str()],
        vec!["report", "--date", today.as_str(), "--json"],
        vec!["report", "--date", today.as_str()],
    ] {
        let out = rtcroom(&d.elsewhere, &args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("no call-record database"), "{args:?}: {err}");
        assert!(err.contains("--config FILE"), "{args:?}: {err}");
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    let made: Vec<_> = std::fs::read_dir(&d.elsewhere).unwrap().collect();
    assert!(
        made.is_empty(),
        "nothing is created where the commands ran: {made:?}"
    );
}

#[test]
fn readers_neither_create_nor_migrate_a_database() {
    let dir = Scratch::new("cli-readers");
    // A file that is not a call-record database: refused, and left as it was.
    let db = dir.0.join("empty.db");
    std::fs::write(&db, b"").unwrap();
    let url = format!("sqlite://{}", db.display());
    let out = rtcroom(
        &dir.0,
        &["records", "day", "2026-05-01"],
        &[("RTCROOM_DATABASE_URL", &url)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no call-record tables"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("rtcroom migrate"), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "no table was created"
    );

    // A database that cannot be reached: said once, without a password it does not have.
    let out = rtcroom(
        &dir.0,
        &["report", "--date", "2026-05-01"],
        &[(
            "RTCROOM_DATABASE_URL",
            "mysql://root@127.0.0.1:1/rtc_room_server",
        )],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "cannot reach the call-record database mysql://root@127.0.0.1:1/rtc_room_server"
        ),
        "{err}"
    );
    assert!(!err.contains("***"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let cause = line.trim_start_matches("  caused by: ");
        for later in &lines[i + 1..] {
            assert!(!later.contains(cause), "said twice:\n{err}");
        }
    }
}

/// `rtcroom ARGS` writing into a pipe whose reader is already gone (as `| head -1` leaves
/// it once `head` has its line), so that its first write meets the closed pipe.
fn into_closed_pipe(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (writer, reader) = tokio::net::unix::pipe::pipe().unwrap();
    drop(reader);
    let writer = writer.into_blocking_fd().unwrap();
    let mut cmd = rtcroom_command(cwd);
    cmd.args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn a_closed_pipe_ends_output_quietly() {
    let dir = Scratch::new("cli-pipe");
    let file = dir.0.join("rtcroom.toml");
    std::fs::write(&file, "[report]\ntimezone = \"UTC\"\n").unwrap();
    let config = file.to_str().unwrap();
    let out = rtcroom(&dir.0, &["migrate", "--config", config], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [
        vec!["check-config", "--config", config],
        vec!["records", "day", "2026-05-01", "--config", config],
        vec![
            "report",
            "--date",
            "2026-05-01",
            "--json",
            "--config",
            config,
        ],
        vec!["report", "--date", "2026-05-01", "--config", config],
    ] {
        let out = into_closed_pipe(&dir.0, &args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("broken pipe"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn log_lines_into_a_file_carry_no_colour_codes() {
    let dir = Scratch::new("cli-log");
    let log = dir.0.join("server.log");
    let mut server = Server::start_logging_to(&[("RTCROOM_LOG_LEVEL", "info")], &log);
    // Serving (so its SIGTERM handler is in place) before it is stopped.
    let (status, _) = http(
        "GET",
        &format!("http://{}/healthz", server.addr),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let stopped = server.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(stopped.success(), "{stopped:?}: {text}");
    assert!(text.contains("rtcroom room server started"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a file:\n{text:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn files_in_the_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = deployed("cli-modes", &[("RTCROOM_AUTH_REQUIRED", "false")]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.data_dir), 0o700, "the data directory");
    for secret in ["demo-app.secret", "turn.secret"] {
        assert_eq!(mode(&d.data_dir.join(secret)), 0o600, "{secret}");
    }
    // A room kept across a restart: the snapshot is written at SIGTERM.
    let mut a = d.server.client().await;
    a.send(join("kept", "alice", "Alice")).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    assert!(d.server.terminate().success());
    assert_eq!(mode(&d.data_dir.join("rooms.snapshot.json")), 0o600);
}

#[tokio::test]
async fn an_admin_token_of_digits_from_the_environment_is_a_string() {
    let server = Server::start(&[("RTCROOM_ADMIN_TOKEN", "123456")]);
    let (status, body) = http(
        "GET",
        &format!("http://{}/api/records/day/2026-05-01", server.addr),
        Some("123456"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
