//! The bus's own two Redis connections, spoken in RESP directly: one that publishes, one
//! that is subscribed. Everything else (registry, owners, states) goes through `redis`'s
//! multiplexed connection ([`super::link::Link`]).
//!
//! Why not `redis` here: its multiplexed connection hands every pipeline to a driver task and
//! back (two task wakeups per batch on the publishing node, the envelopes copied into its
//! command buffer and again into the pipeline's), and its pub/sub connection parses every
//! message into owned values on a driver task of its own and passes it through a channel to
//! the reader (a third wakeup, per message, on the receiving node). On the bus, which carries
//! every relayed frame of a cross-node room, those hops were a large part of each node's CPU
//! per relayed offer (docs/benchmarks.md, "Cluster"). Here the publisher task writes its
//! batch of PUBLISH commands straight into one buffer and reads the integer answers itself,
//! and the subscription's socket is read by the chunk (by a task that only reads, so that
//! Redis never holds a backlog for it) and each message handled where it lies in the chunk. The subset of RESP used is small: commands out as arrays of bulk
//! strings; in, integers, simple strings, errors, bulk strings and arrays of them.

use redis::{ConnectionAddr, ConnectionInfo};
use std::io;
use std::ops::Range;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to Redis, with its read buffer.
pub struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    pos: usize,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// A reply, its strings as ranges of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Int(i64),
    Simple(Range<usize>),
    Error(String),
    Bulk(Option<Range<usize>>),
    Array(Vec<Reply>),
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("redis: {what}"))
}

/// Append one command (an array of bulk strings) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    use std::io::Write as _;
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The line at `from` (without its `\r\n`) and where the next one starts.
fn line(buf: &[u8], from: usize) -> Option<(Range<usize>, usize)> {
    let rest = buf.get(from..)?;
    let at = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((from..from + at, from + at + 2))
}

fn number(buf: &[u8], r: Range<usize>) -> io::Result<i64> {
    std::str::from_utf8(&buf[r])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("a number that does not parse"))
}

/// One reply at `from` of `buf`: `None` while it is incomplete, else the reply and where the
/// next one starts.
pub fn parse(buf: &[u8], from: usize) -> io::Result<Option<(Reply, usize)>> {
    let Some(&kind) = buf.get(from) else {
        return Ok(None);
    };
    let Some((l, next)) = line(buf, from + 1) else {
        return Ok(None);
    };
    Ok(Some(match kind {
        b':' => (Reply::Int(number(buf, l)?), next),
        b'+' => (Reply::Simple(l), next),
        b'-' => (
            Reply::Error(String::from_utf8_lossy(&buf[l]).into_owned()),
            next,
        ),
        b'$' => {
            let n = number(buf, l)?;
            if n < 0 {
                (Reply::Bulk(None), next)
            } else {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(invalid("a bulk string without its \\r\\n"));
                }
                (Reply::Bulk(Some(next..end)), end + 2)
            }
        }
        b'*' => {
            let n = number(buf, l)?;
            let mut items = Vec::with_capacity(n.clamp(0, 16) as usize);
            let mut at = next;
            for _ in 0..n.max(0) {
                match parse(buf, at)? {
                    Some((item, after)) => {
                        items.push(item);
                        at = after;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(items), at)
        }
        _ => return Err(invalid("a reply of a type the bus does not use")),
    }))
}

/// How long connecting (and authenticating) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

impl Conn {
    /// Connect to the Redis of `info` and authenticate as its URL says.
    pub async fn connect(info: &ConnectionInfo) -> io::Result<Self> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_now(info))
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "redis: connect")))
    }

    async fn connect_now(info: &ConnectionInfo) -> io::Result<Self> {
        let io: Box<dyn Io> = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("redis: the bus cannot connect to {other}"),
                ));
            }
        };
        let mut conn = Self {
            io,
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut out = Vec::new();
            match settings.username() {
                Some(user) => command(&mut out, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => command(&mut out, &[b"AUTH", password.as_bytes()]),
            }
            conn.write(&out).await?;
            if let Reply::Error(e) = conn.reply().await? {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, e));
            }
            conn.consume();
        }
        Ok(conn)
    }

    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }

    /// The next reply, read as far as needed (its ranges index the read buffer until the
    /// next call of `reply` or `consume`).
    pub async fn reply(&mut self) -> io::Result<Reply> {
        loop {
            if let Some((reply, next)) = parse(&self.buf, self.pos)? {
                self.pos = next;
                return Ok(reply);
            }
            self.fill().await?;
        }
    }

    /// Forget the replies read so far (their ranges no longer hold).
    pub fn consume(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Hand the connection's reading to a task of its own, which reads whatever arrives as
    /// soon as it arrives: a subscription must be read eagerly, or Redis, whose buffer for a
    /// subscriber is bounded (32 MiB by default), drops the connection of one that lags for
    /// a moment. The replies are then taken from the [`Feed`], read by the chunk.
    pub fn into_feed(self) -> Feed {
        let Self { mut io, buf, pos } = self;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let mut chunk = Vec::with_capacity(32 * 1024);
                let read = tokio::select! {
                    read = io.read_buf(&mut chunk) => read,
                    () = tx.closed() => return,
                };
                let end = !matches!(read, Ok(n) if n > 0);
                let item = match read {
                    Ok(0) => Err(closed()),
                    Ok(_) => Ok(chunk),
                    Err(e) => Err(e),
                };
                if tx.send(item).is_err() || end {
                    return;
                }
            }
        });
        Feed {
            rx,
            buf: buf[pos..].to_vec(),
            pos: 0,
        }
    }

    /// Read more into the buffer (what was parsed already is dropped first).
    async fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        if self.io.read_buf(&mut self.buf).await? == 0 {
            return Err(closed());
        }
        Ok(())
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "redis: the connection closed")
}

/// The replies of a connection read by a task of its own ([`Conn::into_feed`]).
#[derive(Debug)]
pub struct Feed {
    rx: mpsc::UnboundedReceiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Feed {
    /// The next reply; its ranges index [`Feed::bytes`] until the next call.
    pub async fn reply(&mut self) -> io::Result<Reply> {
        loop {
            if let Some((reply, next)) = parse(&self.buf, self.pos)? {
                self.pos = next;
                return Ok(reply);
            }
            let chunk = self.rx.recv().await.unwrap_or_else(|| Err(closed()))?;
            if self.pos == self.buf.len() {
                // Nothing of a reply left over (the usual case): the chunk as it is.
                self.buf = chunk;
            } else {
                self.buf.drain(..self.pos);
                self.buf.extend_from_slice(&chunk);
            }
            self.pos = 0;
        }
    }

    /// The buffer the ranges of a reply index.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"PUBLISH", b"p:bus:a", b"x\r\ny"]);
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$7\r\np:bus:a\r\n$4\r\nx\r\ny\r\n"
        );
    }

    #[test]
    fn replies_parse_whole_or_not_at_all() {
        let message = b"*3\r\n$7\r\nmessage\r\n$3\r\nc:1\r\n$5\r\nab\r\nc\r\n:2\r\n";
        // Any prefix short of the first reply (all but the last 4 bytes) is incomplete, never
        // an error.
        for cut in 0..message.len() - 4 {
            assert_eq!(parse(&message[..cut], 0).unwrap(), None, "cut at {cut}");
        }
        let (reply, next) = parse(message, 0).unwrap().unwrap();
        let Reply::Array(items) = reply else {
            panic!("{reply:?}")
        };
        let bulk = |r: &Reply| match r {
            Reply::Bulk(Some(r)) => &message[r.clone()],
            other => panic!("{other:?}"),
        };
        assert_eq!(bulk(&items[0]), b"message");
        assert_eq!(bulk(&items[1]), b"c:1");
        assert_eq!(bulk(&items[2]), b"ab\r\nc", "a payload may hold \\r\\n");
        assert_eq!(
            parse(message, next).unwrap(),
            Some((Reply::Int(2), message.len()))
        );
        assert_eq!(
            parse(b"-ERR no\r\n", 0).unwrap(),
            Some((Reply::Error("ERR no".into()), 9))
        );
        assert_eq!(
            parse(b"+OK\r\n", 0).unwrap(),
            Some((Reply::Simple(1..3), 5))
        );
        assert_eq!(parse(b"$-1\r\n", 0).unwrap(), Some((Reply::Bulk(None), 5)));
        assert!(
            parse(b"$3\r\nabcd\r\n", 0).is_err(),
            "a bulk longer than it says"
        );
        assert!(parse(b"%1\r\n", 0).is_err(), "a type the bus does not use");
    }
}
