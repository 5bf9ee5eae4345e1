//! The wall clock as the room engine sees it: Unix milliseconds.
//!
//! It sits at the bottom of the import graph: every module that needs the time (the hub,
//! token checks, login, the ICE agent, record recovery) takes it from here.

use rtcroom_core::Millis;
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock as the engine sees it.
pub fn now() -> Millis {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
