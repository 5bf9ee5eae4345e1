//! Time as the engine sees it, passed in by the shell: [`Now`], a monotonic clock for
//! deadlines and the wall clock (Unix milliseconds, UTC) for what is written down.

/// A point in time in milliseconds since the Unix epoch (UTC). The shell reads the clock;
/// the engine only compares and subtracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Millis(pub u64);

impl Millis {
    pub fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    pub fn minus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs.saturating_mul(1000)))
    }

    /// Whole seconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn secs_since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0) / 1000
    }

    /// Unix seconds.
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
}

/// The time of an input, on two clocks. `mono` never steps (the shell reads a monotonic
/// clock, in milliseconds from any origin); every deadline, rate and duration runs on it.
/// `wall` is the Unix time, which an operator or NTP may step: it dates what is written
/// down (records, ids, snapshots) and reads tokens' expiries. A step of the wall clock moves
/// no deadline and changes no duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub wall: Millis,
    pub mono: Millis,
}

impl Now {
    /// How far the wall clock is ahead of the monotonic one (negative: behind).
    pub fn offset(self) -> i64 {
        offset(self.wall, self.mono)
    }
}

/// A time on one clock as the other, with `offset` the difference (wall − mono).
pub(crate) fn shift(t: Millis, offset: i64) -> Millis {
    Millis(t.0.saturating_add_signed(offset))
}

fn offset(wall: Millis, mono: Millis) -> i64 {
    let w = i128::from(wall.0);
    let m = i128::from(mono.0);
    i64::try_from(w - m).unwrap_or(if w > m { i64::MAX } else { i64::MIN })
}

/// One time for both clocks: for callers whose wall clock does not step (tests, tools).
impl From<Millis> for Now {
    fn from(t: Millis) -> Self {
        Self { wall: t, mono: t }
    }
}
