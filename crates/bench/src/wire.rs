//! What goes over the wire: realistic SDP bodies, the frames a client sends (rtcroom's
//! protocol or PeerJS's), and a cheap look at the frames it receives.
//!
//! The load generator is itself CPU-bound on two shared cores, so it never parses a 4 KB
//! relayed frame as JSON: both servers write the routing field first (`{"cmd":"relayOffer",...`
//! and `{"type":"OFFER",...`), and the send timestamp is found by a substring search for a
//! marker placed inside the SDP.

use memchr::memmem;

/// The marker that precedes the send timestamp inside every SDP the bench sends.
pub const TS_MARKER: &str = "x-bench-ts:";
/// The timestamp is written with a fixed width so frame sizes do not depend on it.
const TS_WIDTH: usize = 20;

/// Which signaling protocol the target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// rtcroom's protocol (`/ws`, `cmd` routed).
    Rtcroom,
    /// PeerJS server 1.0.x (`/peerjs?key&id&token`, `type` routed, `dst` addressed). The
    /// bench's own raw relay speaks it too.
    PeerJs,
}

/// A frame split around its timestamp: `prefix`, 20 digits, `suffix`.
#[derive(Debug, Clone)]
pub struct Template {
    prefix: String,
    suffix: String,
}

impl Template {
    fn from_encoded(encoded: &str) -> Self {
        let at = encoded
            .find(TS_MARKER)
            .expect("every generated SDP carries the marker")
            + TS_MARKER.len();
        Self {
            prefix: encoded[..at].to_owned(),
            suffix: encoded[at + TS_WIDTH..].to_owned(),
        }
    }

    fn len(&self) -> usize {
        self.prefix.len() + TS_WIDTH + self.suffix.len()
    }

    fn write(&self, out: &mut String, ts: u64) {
        use std::fmt::Write;
        out.push_str(&self.prefix);
        let _ = write!(out, "{ts:0TS_WIDTH$}");
        out.push_str(&self.suffix);
    }
}

/// A small deterministic generator for the numbers in an SDP (not for anything secret).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A Chrome-like SDP (audio + video, BUNDLE, ICE credentials, DTLS fingerprint, codecs,
/// simulcast-free SSRCs), padded with further codec lines to about `target` bytes.
fn sdp(kind: &str, target: usize, rng: &mut XorShift) -> String {
    let mut s = String::with_capacity(target + 512);
    let sess = 1_000_000_000_000_000_000u64 + rng.below(8_000_000_000_000_000_000);
    let ufrag: String = (0..4)
        .map(|_| char::from(b'a' + u8::try_from(rng.below(26)).unwrap_or(0)))
        .collect();
    let pwd: String = (0..24)
        .map(|_| char::from(b'A' + u8::try_from(rng.below(26)).unwrap_or(0)))
        .collect();
    let setup = if kind == "offer" { "actpass" } else { "active" };
    let fp: Vec<String> = (0..32).map(|_| format!("{:02X}", rng.below(256))).collect();
    let fp = fp.join(":");
    let (a_ssrc, v_ssrc, v_rtx) = (rng.below(1 << 32), rng.below(1 << 32), rng.below(1 << 32));
    let stream = format!("{:016x}", rng.next_u64());
    s.push_str(&format!(
        "v=0\r\no=- {sess} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na={TS_MARKER}{:0TS_WIDTH$}\r\n\
         a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS {stream}\r\n",
        0
    ));
    s.push_str(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
         a=rtcp:9 IN IP4 0.0.0.0\r\n",
    );
    s.push_str(&format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 {fp}\r\na=setup:{setup}\r\na=mid:0\r\n"
    ));
    s.push_str(
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
         a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
         a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
         a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
         a=sendrecv\r\n",
    );
    s.push_str(&format!(
        "a=msid:{stream} {stream}-audio\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
         a=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
         a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
         a=ssrc:{a_ssrc} cname:{ufrag}{stream}\r\na=ssrc:{a_ssrc} msid:{stream} {stream}-audio\r\n"
    ));
    s.push_str(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99 100 101\r\n\
         c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n",
    );
    s.push_str(&format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 {fp}\r\na=setup:{setup}\r\na=mid:1\r\n\
         a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
         a=extmap:13 urn:3gpp:video-orientation\r\na=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
         a=sendrecv\r\na=msid:{stream} {stream}-video\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
    ));
    // Codec blocks until the body reaches its size; the SSRC lines close it.
    let tail = format!(
        "a=ssrc-group:FID {v_ssrc} {v_rtx}\r\na=ssrc:{v_ssrc} cname:{ufrag}{stream}\r\n\
         a=ssrc:{v_ssrc} msid:{stream} {stream}-video\r\na=ssrc:{v_rtx} cname:{ufrag}{stream}\r\n\
         a=ssrc:{v_rtx} msid:{stream} {stream}-video\r\n"
    );
    push_codec_blocks(&mut s, tail.len(), target);
    s.push_str(&tail);
    s
}

/// Appends video codec blocks (each with its RTX) to `s` until, with `tail_len` bytes still
/// to come, the body reaches about `target` bytes.
fn push_codec_blocks(s: &mut String, tail_len: usize, target: usize) {
    let codecs = [
        "VP8/90000",
        "VP9/90000",
        "H264/90000",
        "AV1/90000",
        "H265/90000",
    ];
    let mut pt = 96u32;
    while s.len() + tail_len < target {
        let codec = codecs[usize::try_from(pt).unwrap_or(0) % codecs.len()];
        let block = format!(
            "a=rtpmap:{pt} {codec}\r\na=rtcp-fb:{pt} goog-remb\r\na=rtcp-fb:{pt} transport-cc\r\n\
             a=rtcp-fb:{pt} ccm fir\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n\
             a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
             a=rtpmap:{} rtx/90000\r\na=fmtp:{} apt={pt}\r\n",
            pt + 1,
            pt + 1
        );
        if s.len() + tail_len + block.len() > target + 200 {
            break;
        }
        s.push_str(&block);
        pt += 2;
    }
}

/// A candidate line as a browser sends it (about 300 bytes once framed).
fn candidate_line(rng: &mut XorShift, i: usize) -> serde_json::Value {
    let (ip, typ) = if i % 2 == 0 {
        (
            format!("192.168.{}.{}", rng.below(255), 1 + rng.below(254)),
            "host",
        )
    } else {
        (
            format!("203.0.113.{}", 1 + rng.below(254)),
            "srflx raddr 0.0.0.0 rport 0",
        )
    };
    serde_json::json!({
        "candidate": format!(
            "candidate:{} 1 udp {} {ip} {} typ {typ} generation 0 ufrag {:04x} network-id 1 network-cost 10",
            rng.below(4_000_000_000), 2_122_260_223 - i * 8, 40_000 + rng.below(20_000), rng.below(65_536)
        ),
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": format!("{:04x}", rng.below(65_536)),
    })
}

/// The message bodies every member draws from: offers and answers of several sizes in the
/// requested range, and candidates. Built once, shared by all members.
#[derive(Debug)]
pub struct Bodies {
    proto: Proto,
    offers: Vec<Template>,
    answers: Vec<Template>,
    candidates: Vec<String>,
}

const VARIANTS: usize = 8;

impl Bodies {
    pub fn new(proto: Proto, sdp_min: usize, sdp_max: usize) -> Self {
        let mut rng = XorShift::new(0x5eed);
        let sdp_max = sdp_max.max(sdp_min);
        let size = |i: usize| sdp_min + (sdp_max - sdp_min) * i / (VARIANTS - 1);
        let encode = |kind: &str, sdp: String| -> Template {
            let desc = serde_json::json!({"type": kind, "sdp": sdp});
            let encoded = match proto {
                // The original SDK sends `msg` as a string holding JSON.
                Proto::Rtcroom => serde_json::Value::String(desc.to_string()).to_string(),
                // PeerJS sends `payload: {sdp: RTCSessionDescription, type: "media", ...}`.
                Proto::PeerJs => serde_json::json!({
                    "sdp": desc, "type": "media", "connectionId": "mc_bench", "browser": "chrome",
                    "metadata": null,
                })
                .to_string(),
            };
            Template::from_encoded(&encoded)
        };
        let offers = (0..VARIANTS)
            .map(|i| encode("offer", sdp("offer", size(i), &mut rng)))
            .collect();
        let answers = (0..VARIANTS)
            .map(|i| encode("answer", sdp("answer", size(i), &mut rng)))
            .collect();
        let candidates = (0..VARIANTS)
            .map(|i| {
                let c = candidate_line(&mut rng, i);
                match proto {
                    Proto::Rtcroom => serde_json::Value::String(c.to_string()).to_string(),
                    Proto::PeerJs => serde_json::json!({
                        "candidate": c, "type": "media", "connectionId": "mc_bench",
                    })
                    .to_string(),
                }
            })
            .collect();
        Self {
            proto,
            offers,
            answers,
            candidates,
        }
    }

    /// The sizes of the SDP-bearing bodies (for the report).
    pub fn body_sizes(&self) -> (usize, usize) {
        let lens = self.offers.iter().chain(&self.answers).map(Template::len);
        let min = lens.clone().min().unwrap_or(0);
        (min, lens.max().unwrap_or(0))
    }
}

/// Who a member is, for building its frames.
#[derive(Debug, Clone)]
pub struct Ident {
    pub app: &'static str,
    pub uid: String,
    pub room: String,
    /// From `respJoin`; empty before.
    pub session: String,
    /// The client `time` field, Unix seconds as the original SDK sends it.
    pub time: String,
}

fn head(out: &mut String, cmd: &str, me: &Ident) {
    out.push_str("{\"cmd\":\"");
    out.push_str(cmd);
    out.push_str("\",\"appId\":\"");
    out.push_str(me.app);
    out.push_str("\",\"sessionId\":\"");
    out.push_str(&me.session);
    out.push_str("\",\"roomId\":\"");
    out.push_str(&me.room);
    out.push_str("\",\"uid\":\"");
    out.push_str(&me.uid);
    out.push_str("\",\"time\":\"");
    out.push_str(&me.time);
    out.push('"');
}

/// A description (offer or answer) or a candidate, as this protocol frames it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desc {
    Offer,
    Answer,
}

impl Bodies {
    /// `offer`/`answer` (rtcroom) or `OFFER`/`ANSWER` (PeerJS) to `remote`, carrying `ts`.
    pub fn desc(&self, me: &Ident, remote: &str, kind: Desc, variant: usize, ts: u64) -> String {
        let tmpl = match kind {
            Desc::Offer => &self.offers[variant % VARIANTS],
            Desc::Answer => &self.answers[variant % VARIANTS],
        };
        let mut out = String::with_capacity(tmpl.len() + 256);
        match self.proto {
            Proto::Rtcroom => {
                let cmd = if kind == Desc::Offer {
                    "offer"
                } else {
                    "answer"
                };
                head(&mut out, cmd, me);
                out.push_str(",\"uname\":\"");
                out.push_str(&me.uid);
                out.push_str("\",\"remoteUid\":\"");
                out.push_str(remote);
                out.push_str("\",\"isIceReset\":false,\"msg\":");
                tmpl.write(&mut out, ts);
                out.push('}');
            }
            Proto::PeerJs => {
                let ty = if kind == Desc::Offer {
                    "OFFER"
                } else {
                    "ANSWER"
                };
                peer_head(&mut out, ty, me, remote);
                out.push_str(",\"payload\":");
                tmpl.write(&mut out, ts);
                out.push('}');
            }
        }
        out
    }

    pub fn candidate(&self, me: &Ident, remote: &str, variant: usize) -> String {
        let body = &self.candidates[variant % VARIANTS];
        let mut out = String::with_capacity(body.len() + 256);
        match self.proto {
            Proto::Rtcroom => {
                head(&mut out, "candidate", me);
                out.push_str(",\"remoteUid\":\"");
                out.push_str(remote);
                out.push_str("\",\"msg\":");
            }
            Proto::PeerJs => {
                peer_head(&mut out, "CANDIDATE", me, remote);
                out.push_str(",\"payload\":");
            }
        }
        out.push_str(body);
        out.push('}');
        out
    }
}

fn peer_head(out: &mut String, ty: &str, me: &Ident, remote: &str) {
    // PeerJS overwrites `src` with the connection's id; the raw relay forwards the frame as
    // it is, so the sender names itself.
    out.push_str("{\"type\":\"");
    out.push_str(ty);
    out.push_str("\",\"src\":\"");
    out.push_str(&me.uid);
    out.push_str("\",\"dst\":\"");
    out.push_str(remote);
    out.push('"');
}

/// rtcroom's `join`, with the fields the original web SDK sends.
pub fn join(me: &Ident) -> String {
    format!(
        r#"{{"cmd":"join","appId":"{}","token":"bench-token","roomId":"{}","roomName":"bench","uid":"{}","uname":"{}","userType":0,"talkType":1,"time":"{}","osName":"Linux x86_64","browser":"chrome120.0","sdkInfo":"rtcroom-bench"}}"#,
        me.app, me.room, me.uid, me.uid, me.time
    )
}

pub fn keep_live(me: &Ident) -> String {
    let mut out = String::with_capacity(160);
    head(&mut out, "keepLive", me);
    out.push('}');
    out
}

pub const PEERJS_HEARTBEAT: &str = r#"{"type":"HEARTBEAT"}"#;

pub fn peer_connected(me: &Ident, remote: &str) -> String {
    let mut out = String::with_capacity(200);
    head(&mut out, "peerConnected", me);
    out.push_str(",\"uname\":\"");
    out.push_str(&me.uid);
    out.push_str("\",\"connectType\":\"STUN\",\"remoteUid\":\"");
    out.push_str(remote);
    out.push_str("\"}");
    out
}

pub fn report_stats(me: &Ident, remote: &str) -> String {
    format!(
        r#"{{"cmd":"reportStats","appId":"{}","roomId":"{}","uid":"{}","remoteId":"{remote}","audio":{{"send":{{"packetsLostRate":"0.00","bitRate":39}},"recv":{{"packetsLostRate":"0.00","bitRate":39}}}},"video":{{"send":{{"frameRateSent":30,"width":640,"height":480,"codecName":"VP8","packetsLostRate":"0.00","bitRate":604}},"recv":{{"frameRateRecv":30,"width":640,"height":480,"codecName":"VP8","packetsLostRate":"0.00","bitRate":607}}}},"time":"{}"}}"#,
        me.app, me.room, me.uid, me.time
    )
}

pub fn leave(me: &Ident) -> String {
    let mut out = String::with_capacity(200);
    head(&mut out, "leave", me);
    out.push_str(",\"uname\":\"");
    out.push_str(&me.uid);
    out.push_str("\",\"userType\":0}");
    out
}

/// What a received frame is, from its routing field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `respJoin` (rtcroom) or `OPEN` (PeerJS).
    Joined,
    NotifyNewPeer,
    RespOffer,
    RelayOffer,
    RelayAnswer,
    RelayCandidate,
    RespKeepLive,
    RespPeerConnected,
    RespLeave,
    RelayLeave,
    /// A response that is only sent on failure (`respAnswer`, `generalMsgResp`, ...) or a
    /// PeerJS `ERROR`/`ID-TAKEN`/`EXPIRE`.
    Failure,
    Other,
}

/// The string value of the first `"key":"` in `frame`.
pub fn str_field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let at = memmem::find(frame.as_bytes(), pat.as_bytes())? + pat.len();
    let rest = &frame[at..];
    let end = memchr::memchr(b'"', rest.as_bytes())?;
    Some(&rest[..end])
}

/// The routing field, read from the start of the frame.
pub fn classify(proto: Proto, frame: &str) -> Kind {
    match proto {
        Proto::Rtcroom => {
            let Some(cmd) = frame
                .strip_prefix("{\"cmd\":\"")
                .and_then(|r| r.split_once('"'))
                .map(|(c, _)| c)
            else {
                return Kind::Other;
            };
            match cmd {
                "respJoin" => Kind::Joined,
                "notifyNewPeer" => Kind::NotifyNewPeer,
                "respOffer" => Kind::RespOffer,
                "relayOffer" => Kind::RelayOffer,
                "relayAnswer" => Kind::RelayAnswer,
                "relayCandidate" => Kind::RelayCandidate,
                "respKeepLive" => Kind::RespKeepLive,
                "respPeerConnected" => Kind::RespPeerConnected,
                "respLeave" => Kind::RespLeave,
                "relayLeave" => Kind::RelayLeave,
                "respAnswer" | "respCandidate" | "generalMsgResp" | "systemKickUser" => {
                    Kind::Failure
                }
                _ => Kind::Other,
            }
        }
        Proto::PeerJs => {
            let Some(ty) = frame
                .strip_prefix("{\"type\":\"")
                .and_then(|r| r.split_once('"'))
                .map(|(c, _)| c)
            else {
                return Kind::Other;
            };
            match ty {
                "OPEN" => Kind::Joined,
                "OFFER" => Kind::RelayOffer,
                "ANSWER" => Kind::RelayAnswer,
                "CANDIDATE" => Kind::RelayCandidate,
                "LEAVE" => Kind::RelayLeave,
                "ERROR" | "ID-TAKEN" | "EXPIRE" => Kind::Failure,
                _ => Kind::Other,
            }
        }
    }
}

/// The `result` of an rtcroom response (0 when absent, as in PeerJS, which has none).
pub fn result(frame: &str) -> i64 {
    let Some(at) = memmem::find(frame.as_bytes(), b"\"result\":") else {
        return 0;
    };
    let digits: String = frame[at + 9..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().unwrap_or(-1)
}

/// The sender of a relayed frame: `uid` (rtcroom writes it right after `cmd`) or `src`.
pub fn sender(proto: Proto, frame: &str) -> Option<&str> {
    match proto {
        Proto::Rtcroom => str_field(frame, "uid"),
        Proto::PeerJs => str_field(frame, "src"),
    }
}

/// The send timestamp the bench put inside the SDP, if any.
pub fn timestamp(frame: &str) -> Option<u64> {
    let at = memmem::find(frame.as_bytes(), TS_MARKER.as_bytes())? + TS_MARKER.len();
    frame.get(at..at + TS_WIDTH)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Ident {
        Ident {
            app: "10000",
            uid: "m1".into(),
            room: "r1".into(),
            session: "01DD05Q5G8EA81MMTFRT0SZH3X".into(),
            time: "1560152983".into(),
        }
    }

    #[test]
    fn offers_are_valid_json_of_the_requested_size_and_carry_the_timestamp() {
        for proto in [Proto::Rtcroom, Proto::PeerJs] {
            let bodies = Bodies::new(proto, 3000, 6000);
            let (min, max) = bodies.body_sizes();
            assert!(min >= 3000 && max <= 7500, "{proto:?}: {min}..{max}");
            for v in 0..VARIANTS {
                let frame = bodies.desc(&me(), "m2", Desc::Offer, v, 123_456_789);
                let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
                assert_eq!(timestamp(&frame), Some(123_456_789));
                let sdp = match proto {
                    Proto::Rtcroom => {
                        assert_eq!(value["cmd"], "offer");
                        assert_eq!(value["remoteUid"], "m2");
                        let inner: serde_json::Value =
                            serde_json::from_str(value["msg"].as_str().unwrap()).unwrap();
                        inner["sdp"].as_str().unwrap().to_owned()
                    }
                    Proto::PeerJs => {
                        assert_eq!(value["type"], "OFFER");
                        assert_eq!(value["dst"], "m2");
                        value["payload"]["sdp"]["sdp"].as_str().unwrap().to_owned()
                    }
                };
                assert!(sdp.starts_with("v=0\r\n") && sdp.contains("m=video"));
                assert!((2900..6300).contains(&sdp.len()), "{}", sdp.len());
            }
        }
    }

    #[test]
    fn small_frames_are_valid_json() {
        let bodies = Bodies::new(Proto::Rtcroom, 3000, 6000);
        let m = me();
        for frame in [
            join(&m),
            keep_live(&m),
            peer_connected(&m, "m2"),
            report_stats(&m, "m2"),
            leave(&m),
            bodies.candidate(&m, "m2", 0),
        ] {
            let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert!(v["cmd"].is_string(), "{frame}");
        }
        let c = bodies.candidate(&m, "m2", 1);
        assert!(
            (200..400).contains(&c.len()),
            "candidate frame {} bytes",
            c.len()
        );
        let p = Bodies::new(Proto::PeerJs, 3000, 6000).candidate(&m, "m2", 1);
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["type"], "CANDIDATE");
    }

    #[test]
    fn classification_reads_the_routing_field() {
        let relay = r#"{"cmd":"relayOffer","uid":"m7","uname":"m7","remoteUid":"m8","msg":"x"}"#;
        assert_eq!(classify(Proto::Rtcroom, relay), Kind::RelayOffer);
        assert_eq!(sender(Proto::Rtcroom, relay), Some("m7"));
        let resp = r#"{"cmd":"respOffer","remoteUid":"m8","result":6,"desc":"gone"}"#;
        assert_eq!(classify(Proto::Rtcroom, resp), Kind::RespOffer);
        assert_eq!(result(resp), 6);
        assert_eq!(result(r#"{"cmd":"respKeepLive","result":0}"#), 0);
        let peer = r#"{"type":"OFFER","src":"m3","dst":"m4","payload":{}}"#;
        assert_eq!(classify(Proto::PeerJs, peer), Kind::RelayOffer);
        assert_eq!(sender(Proto::PeerJs, peer), Some("m3"));
        assert_eq!(classify(Proto::PeerJs, r#"{"type":"OPEN"}"#), Kind::Joined);
        assert_eq!(classify(Proto::Rtcroom, "garbage"), Kind::Other);
    }
}
