//! `rtcroom ice-agent`: the agent beside a TURN server (`ice::agent`).

use crate::ice::agent::{AgentOptions, run_agent};
use crate::ops::log;

pub fn run(opts: AgentOptions) -> anyhow::Result<()> {
    let _log = log::init("human", "info");
    let runtime = super::small_runtime()?;
    runtime.block_on(run_agent(opts, super::shutdown_signal()))
}
