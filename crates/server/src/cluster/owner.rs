//! Room ownership in Redis: `<prefix>:room:<app>\x1f<room>` holds the owner's node id. Every
//! change is one Lua script, so two nodes never both think they took a room.

use super::link::Link;
use redis::Script;

/// What a reconcile decided for a room this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// This node keeps it; `beaten` is the live node that held the key before (it must end
    /// its copy), if any.
    Kept { beaten: Option<String> },
    /// Another live node keeps it (the lower id): this node ends its copy.
    Lost(String),
}

/// What the owner key of a room says, after a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node owns the room (it took it just now, or had it).
    Mine,
    /// A live node owns it.
    Live(String),
    /// The owner is dead (its node key is gone): the room awaits a new owner.
    Dead(String),
}

/// Take the room if nobody owns it; say who does otherwise. A fresh claim expires after
/// ARGV[3] ms unless the room's first state is written (which makes it last): a join that is
/// refused leaves no owner key behind for good.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return {'mine', ARGV[1]}
end
if cur == ARGV[1] then return {'mine', cur} end
if redis.call('EXISTS', ARGV[2] .. cur) == 0 then return {'dead', cur} end
return {'live', cur}
";

/// Compare and set: the owner becomes ARGV[2] only if it is ARGV[1] ('' for nobody).
const TAKE: &str = r"
local cur = redis.call('GET', KEYS[1]) or ''
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// The room emptied: its owner key and state go, if this node still owns it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
";

/// After an outage, for a room this node holds: keep it when nobody else owns it (or its
/// owner is dead); when another live node does, the lower node id keeps it.
const RECONCILE: &str = r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or redis.call('EXISTS', ARGV[2] .. cur) == 0 or ARGV[1] < cur then
  redis.call('SET', KEYS[1], ARGV[1])
  return {'mine', cur or ''}
end
return {'live', cur}
";

/// How long a claim lasts without the room's state being written.
const FRESH_CLAIM_MS: u64 = 60_000;

pub async fn claim(link: &Link, app: &str, room: &str) -> redis::RedisResult<Claim> {
    let (kind, owner): (String, String) = Script::new(CLAIM)
        .key(link.room_key(app, room))
        .arg(&link.me)
        .arg(link.node_key_prefix())
        .arg(FRESH_CLAIM_MS)
        .invoke_async(&mut link.conn())
        .await?;
    Ok(match kind.as_str() {
        "mine" => Claim::Mine,
        "dead" => Claim::Dead(owner),
        _ => Claim::Live(owner),
    })
}

/// Make `to` the owner if `from` (empty: nobody) still is; whether it happened.
pub async fn take(
    link: &Link,
    app: &str,
    room: &str,
    from: &str,
    to: &str,
) -> redis::RedisResult<bool> {
    let n: i64 = Script::new(TAKE)
        .key(link.room_key(app, room))
        .arg(from)
        .arg(to)
        .invoke_async(&mut link.conn())
        .await?;
    Ok(n == 1)
}

pub async fn release(link: &Link, app: &str, room: &str) -> redis::RedisResult<bool> {
    let n: i64 = Script::new(RELEASE)
        .key(link.room_key(app, room))
        .key(link.state_key(app, room))
        .arg(&link.me)
        .invoke_async(&mut link.conn())
        .await?;
    Ok(n == 1)
}

pub async fn reconcile(link: &Link, app: &str, room: &str) -> redis::RedisResult<Reconciled> {
    let (kind, owner): (String, String) = Script::new(RECONCILE)
        .key(link.room_key(app, room))
        .arg(&link.me)
        .arg(link.node_key_prefix())
        .invoke_async(&mut link.conn())
        .await?;
    Ok(if kind == "mine" {
        let beaten = (!owner.is_empty() && owner != link.me).then_some(owner);
        Reconciled::Kept { beaten }
    } else {
        Reconciled::Lost(owner)
    })
}

/// Who owns a room now (`None`: nobody).
pub async fn owner(link: &Link, app: &str, room: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET")
        .arg(link.room_key(app, room))
        .query_async(&mut link.conn())
        .await
}
