//! Places on the earth, for choosing the relay nearest to the members of a pair.
//!
//! A [`GeoPoint`] is data like any other input: the shell finds it (from a GeoIP database,
//! or from the coordinates in a server's registration) and passes it in; nothing here looks
//! anything up.

/// A point on the earth, in microdegrees so that it compares exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeoPoint {
    lat_micro: i32,
    lon_micro: i32,
}

/// The mean radius of the earth, km.
const EARTH_RADIUS_KM: f64 = 6371.0;

impl GeoPoint {
    /// The point at `lat`, `lon` in degrees; `None` when either is out of range (latitude
    /// −90..=90, longitude −180..=180) or not finite.
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        let ok = lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
        ok.then(|| Self {
            lat_micro: (lat * 1e6).round() as i32,
            lon_micro: (lon * 1e6).round() as i32,
        })
    }

    pub fn lat(self) -> f64 {
        f64::from(self.lat_micro) / 1e6
    }

    pub fn lon(self) -> f64 {
        f64::from(self.lon_micro) / 1e6
    }

    /// The great-circle distance to `other` in km (haversine).
    pub fn distance_km(self, other: GeoPoint) -> f64 {
        let (la1, la2) = (self.lat().to_radians(), other.lat().to_radians());
        let dla = la2 - la1;
        let dlo = (other.lon() - self.lon()).to_radians();
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
    }
}

/// How far a server at `server` is from the located members of a pair, in whole km summed
/// over them: 0 for every server when no member is located, and `u64::MAX` for a server of
/// unknown place while some member is located (such servers come after every located one).
pub(crate) fn pair_distance(server: Option<GeoPoint>, members: &[Option<GeoPoint>]) -> u64 {
    let mut located = members.iter().flatten().peekable();
    if located.peek().is_none() {
        return 0;
    }
    let Some(server) = server else {
        return u64::MAX;
    };
    located.map(|m| server.distance_km(*m).round() as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint::new(lat, lon).expect("in range")
    }

    #[test]
    fn known_distances() {
        // Berlin – Paris is about 878 km; Frankfurt – New York about 6,200 km.
        let d = p(52.52, 13.405).distance_km(p(48.8566, 2.3522));
        assert!((870.0..890.0).contains(&d), "{d}");
        let d = p(50.11, 8.68).distance_km(p(40.71, -74.01));
        assert!((6150.0..6250.0).contains(&d), "{d}");
    }

    #[test]
    fn out_of_range_is_refused() {
        for (lat, lon) in [
            (91.0, 0.0),
            (0.0, 180.5),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            assert_eq!(GeoPoint::new(lat, lon), None, "{lat} {lon}");
        }
    }

    #[test]
    fn unknown_members_and_servers() {
        assert_eq!(pair_distance(None, &[None, None]), 0);
        assert_eq!(pair_distance(Some(p(0.0, 0.0)), &[None, None]), 0);
        assert_eq!(pair_distance(None, &[Some(p(0.0, 0.0)), None]), u64::MAX);
        assert_eq!(
            pair_distance(Some(p(0.0, 0.0)), &[Some(p(0.0, 0.0)), None]),
            0
        );
    }

    fn point() -> impl Strategy<Value = GeoPoint> {
        (-90.0..=90.0f64, -180.0..=180.0f64).prop_map(|(a, b)| p(a, b))
    }

    proptest! {
        /// A metric on the sphere: symmetric, zero to itself, at most half the circumference,
        /// and the triangle inequality (up to rounding).
        #[test]
        fn distance_is_a_metric(a in point(), b in point(), c in point()) {
            let half = std::f64::consts::PI * EARTH_RADIUS_KM;
            prop_assert!(a.distance_km(a).abs() < 1e-6);
            prop_assert!((a.distance_km(b) - b.distance_km(a)).abs() < 1e-6);
            prop_assert!(a.distance_km(b) <= half + 1e-6);
            prop_assert!(a.distance_km(c) <= a.distance_km(b) + b.distance_km(c) + 1e-6);
        }
    }
}
