//! A private `mariadbd` for tests that need the database to go away: its own data directory,
//! port and socket under a temp dir, started and killed by its pid. The machine's shared
//! MariaDB on 3306 is never touched. The server's tests include this file too
//! (`#[path]`), so both crates share one harness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateMariadb {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl PrivateMariadb {
    /// Initialises a data directory under `dir` and starts the server on a free port.
    pub fn install(dir: &Path) -> PrivateMariadb {
        let data = dir.join("data");
        // Its own temporary directory: two bootstraps at once in the shared /tmp collide on
        // their temporary tables ("Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("a temporary directory for mariadbd");
        let out = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg("--user=root")
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut db = PrivateMariadb {
            dir: dir.to_owned(),
            port: free_port(),
            child: None,
        };
        db.start();
        db
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/rtc_room_server", self.port)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let d = &self.dir;
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
            ])
            .args(["--innodb-buffer-pool-size=64M", "--skip-log-bin"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private mariadbd did not listen; see {}",
                d.join("error.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash or a power cut would: no clean shutdown of InnoDB.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill by pid");
            c.wait().expect("reaped");
        }
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        self.kill();
    }
}
