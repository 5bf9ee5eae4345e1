//! Decoding and encoding of a relayed offer, per message (`cargo bench -p rtcroom-protocol
//! --bench decode`). Prints nanoseconds per operation; the figures and the machine go in
//! docs/benchmarks.md.

use rtcroom_protocol::{
    IceServer, Ident, RelayOffer, Request, RespOffer, ResultCode, RtcConfig, ServerMsg, SharedJson,
};
use std::hint::black_box;
use std::time::Instant;

/// A Chrome-like SDP of about `size` bytes, as the original SDK sends it: JSON text of
/// `{type, sdp}` inside the `msg` string.
fn offer_frame(size: usize) -> String {
    let mut sdp = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n",
    );
    let lines = [
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=rtcp-fb:111 transport-cc\r\n",
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
        "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6\r\n",
        "a=candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0\r\n",
    ];
    let mut i = 0;
    while sdp.len() < size {
        sdp.push_str(lines[i % lines.len()]);
        i += 1;
    }
    let inner = serde_json::json!({"type": "offer", "sdp": sdp}).to_string();
    serde_json::json!({
        "cmd": "offer", "appId": "10000", "roomId": "8004571670628757", "uid": "782920256",
        "remoteUid": "386082043", "sessionId": "01DD05Q5G8EA81MMTFRT0SZH3X",
        "time": "1560138845", "msg": inner, "isIceReset": false,
    })
    .to_string()
}

fn per_op(label: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    println!("{label:<40} {ns:>8.0} ns");
}

/// The two messages the server writes for a relayed offer: the relay and its `respOffer`.
fn relay_messages(frame: &str) -> [ServerMsg; 2] {
    let Ok(Request::Offer(offer)) = rtcroom_protocol::decode(frame, 64 * 1024) else {
        panic!("the bench's offer does not decode");
    };
    let config = RtcConfig::with_servers(vec![IceServer {
        credential: "1560138845:782920256".into(),
        urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
        username: "c2VjcmV0IGNyZWRlbnRpYWwgaGVyZQ==".into(),
    }]);
    let sub = "01DD084WFA4J0EBG3WDHGE3HFR".parse().expect("a ULID");
    [
        ServerMsg::RelayOffer(RelayOffer {
            uid: Ident::new("782920256"),
            uname: "client_51".into(),
            remote_uid: offer.remote_uid.clone(),
            sub_session_id: sub,
            msg: offer.msg,
            rtc_config: SharedJson::rtc_config(&config),
            is_ice_reset: false,
        }),
        ServerMsg::RespOffer(RespOffer {
            remote_uid: offer.remote_uid,
            result: ResultCode::Ok,
            desc: "ok".into(),
            sub_session_id: Some(sub),
        }),
    ]
}

fn main() {
    for size in [1_200, 5_000] {
        let frame = offer_frame(size);
        println!("offer frame of {} bytes", frame.len());
        per_op("  decode", 100_000, || {
            black_box(rtcroom_protocol::decode(black_box(&frame), 64 * 1024).is_ok());
        });
        per_op("  serde_json::from_str::<IgnoredAny>", 100_000, || {
            black_box(serde_json::from_str::<serde::de::IgnoredAny>(black_box(&frame)).is_ok());
        });
        let msgs = relay_messages(&frame);
        let mut out = Vec::with_capacity(2 * frame.len());
        per_op("  write relayOffer and respOffer", 100_000, || {
            out.clear();
            for m in black_box(&msgs) {
                m.write_json(&mut out);
            }
            black_box(out.len());
        });
    }
}
