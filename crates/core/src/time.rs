//! Time as the engine sees it: Unix milliseconds, UTC, passed in by the shell.

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
