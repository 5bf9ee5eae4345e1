//! The shared ICE registry: a command of the ICE HTTP API (a coturn agent's registration,
//! load report or deregistration) that one node takes is published on `<prefix>:ice`, and
//! every node applies it to its own engine, so that least-loaded selection sees every
//! server wherever its agent reports. The latest registration and report of each server are
//! kept in the hash `<prefix>:ice:servers` too, for nodes that start later. The embedded
//! TURN server of a node stays that node's own.

use super::bus::{Bus, IceNote};
use super::link::Link;
use crate::signaling::hub::Hub;
use rtcroom_ice::IceCommand;

/// Publish a command's body and keep the latest per server.
pub async fn share(
    link: &Link,
    bus: &Bus,
    body: &[u8],
    at: Option<(f64, f64)>,
) -> redis::RedisResult<()> {
    let Ok(req) = rtcroom_ice::parse(body) else {
        return Ok(());
    };
    let note = IceNote {
        from: link.me.clone(),
        body: String::from_utf8_lossy(body).into_owned(),
        at,
    };
    let json = serde_json::to_string(&note).expect("ICE notes serialize");
    let mut conn = link.conn();
    match &req.command {
        IceCommand::Register(r) => {
            redis::cmd("HSET")
                .arg(link.ice_hash())
                .arg(format!("register:{}", r.ip))
                .arg(&json)
                .query_async::<()>(&mut conn)
                .await?;
        }
        IceCommand::Report(r) => {
            redis::cmd("HSET")
                .arg(link.ice_hash())
                .arg(format!("report:{}", r.ip))
                .arg(&json)
                .query_async::<()>(&mut conn)
                .await?;
        }
        IceCommand::Deregister { ip } => {
            redis::cmd("HDEL")
                .arg(link.ice_hash())
                .arg(format!("register:{ip}"))
                .arg(format!("report:{ip}"))
                .query_async::<()>(&mut conn)
                .await?;
        }
    }
    bus.publish(link.ice_channel(), json).await;
    Ok(())
}

/// Apply a note another node published (this node's own are applied already).
pub async fn apply(me: &str, hub: &Hub, payload: &[u8]) {
    let Ok(note) = serde_json::from_slice::<IceNote>(payload) else {
        return;
    };
    if note.from != me {
        apply_note(hub, note).await;
    }
}

async fn apply_note(hub: &Hub, note: IceNote) {
    let Ok(req) = rtcroom_ice::parse(note.body.as_bytes()) else {
        return;
    };
    let mut command = req.command;
    if let (IceCommand::Register(r), Some((lat, lon))) = (&mut command, note.at)
        && r.location.is_none()
    {
        r.location = rtcroom_ice::GeoPoint::new(lat, lon);
    }
    let _ = hub.ice(command).await;
}

/// Apply the registrations, then the reports, kept in Redis.
pub async fn load(link: &Link, hub: &Hub) {
    let kept: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL")
        .arg(link.ice_hash())
        .query_async(&mut link.conn())
        .await;
    let Ok(mut kept) = kept else {
        return;
    };
    // Registrations first: a report of a server not registered is refused.
    kept.sort_by_key(|(field, _)| !field.starts_with("register:"));
    for (_, json) in kept {
        if let Ok(note) = serde_json::from_str::<IceNote>(&json) {
            apply_note(hub, note).await;
        }
    }
}
