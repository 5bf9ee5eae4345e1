//! The body of `reportStats`: one client's view of one remote, read liberally.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// One quality report, flattened into the columns of `rtc_talk_quality_stats_infos`
/// (plus the receive resolution and codecs, which the document's struct carries too).
/// Absent values are zero, as the document's column defaults are.
///
/// With the `serde` feature it serializes by its field names: the storage form of the record
/// spool, not the wire form of `reportStats` (which `decode` reads).
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, Deserialize))]
pub struct QualityStats {
    pub aud_send_lost_rate: f32,
    pub aud_send_bitrate: i64,
    pub aud_rcv_lost_rate: f32,
    pub aud_rcv_bitrate: i64,
    pub vid_send_lost_rate: f32,
    pub vid_send_bitrate: i64,
    pub send_width: i64,
    pub send_height: i64,
    pub send_framerate_sent: i64,
    pub send_codec: String,
    pub vid_rcv_lost_rate: f32,
    pub vid_rcv_bitrate: i64,
    pub recv_width: i64,
    pub recv_height: i64,
    pub recv_framerate_recv: i64,
    pub recv_codec: String,
}

/// A number that may come as a JSON number or as a string holding one (`"0.00"`).
#[derive(Debug, Clone, Copy, Default)]
struct Loose(f64);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string holding a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
                let t = v.trim().trim_end_matches('%');
                if t.is_empty() {
                    return Ok(Loose(0.0));
                }
                t.parse().map(Loose).map_err(|_| E::custom("not a number"))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Direction {
    bit_rate: Option<Loose>,
    packets_lost_rate: Option<Loose>,
    codec_name: Option<String>,
    frame_rate_sent: Option<Loose>,
    frame_rate_recv: Option<Loose>,
    width: Option<Loose>,
    height: Option<Loose>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Media {
    send: Option<Direction>,
    recv: Option<Direction>,
}

/// Why a stats body was refused; names the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatsError(pub String);

fn value(field: &str, v: Option<Loose>) -> Result<f64, StatsError> {
    let x = v.map_or(0.0, |l| l.0);
    if x.is_finite() && (0.0..=1e12).contains(&x) {
        Ok(x)
    } else {
        Err(StatsError(format!("{field} must be a finite number >= 0")))
    }
}

impl QualityStats {
    pub(crate) fn parse(audio: Option<&str>, video: Option<&str>) -> Result<Self, StatsError> {
        let media = |name: &str, raw: Option<&str>| -> Result<Media, StatsError> {
            match raw {
                None => Ok(Media::default()),
                Some(r) => serde_json::from_str::<Option<Media>>(r)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| StatsError(format!("{name}: {e}"))),
            }
        };
        let a = media("audio", audio)?;
        let v = media("video", video)?;
        let (a_s, a_r) = (a.send.unwrap_or_default(), a.recv.unwrap_or_default());
        let (v_s, v_r) = (v.send.unwrap_or_default(), v.recv.unwrap_or_default());
        // Bitrates, sizes and frame rates are integral columns; fractions are truncated.
        let int = |f: &str, x: Option<Loose>| value(f, x).map(|x| x as i64);
        let rate = |f: &str, x: Option<Loose>| value(f, x).map(|x| x as f32);
        Ok(Self {
            aud_send_lost_rate: rate("audio.send.packetsLostRate", a_s.packets_lost_rate)?,
            aud_send_bitrate: int("audio.send.bitRate", a_s.bit_rate)?,
            aud_rcv_lost_rate: rate("audio.recv.packetsLostRate", a_r.packets_lost_rate)?,
            aud_rcv_bitrate: int("audio.recv.bitRate", a_r.bit_rate)?,
            vid_send_lost_rate: rate("video.send.packetsLostRate", v_s.packets_lost_rate)?,
            vid_send_bitrate: int("video.send.bitRate", v_s.bit_rate)?,
            send_width: int("video.send.width", v_s.width)?,
            send_height: int("video.send.height", v_s.height)?,
            send_framerate_sent: int("video.send.frameRateSent", v_s.frame_rate_sent)?,
            send_codec: v_s.codec_name.unwrap_or_default(),
            vid_rcv_lost_rate: rate("video.recv.packetsLostRate", v_r.packets_lost_rate)?,
            vid_rcv_bitrate: int("video.recv.bitRate", v_r.bit_rate)?,
            recv_width: int("video.recv.width", v_r.width)?,
            recv_height: int("video.recv.height", v_r.height)?,
            recv_framerate_recv: int("video.recv.frameRateRecv", v_r.frame_rate_recv)?,
            recv_codec: v_r.codec_name.unwrap_or_default(),
        })
    }
}
