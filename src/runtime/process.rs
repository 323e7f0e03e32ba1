//! TEMP STUB
use super::*;
use crate::clock::Clock;
use std::sync::Arc;
pub struct ProcessRuntime;
impl ProcessRuntime {
    pub fn new(_c: Arc<dyn Clock>, _t: tokio::sync::mpsc::UnboundedSender<RuntimeEvent>) -> Self {
        ProcessRuntime
    }
}
impl Runtime for ProcessRuntime {
    fn start(&self, _l: ContainerLaunch) {}
    fn stop_pod(&self, _u: &str, _g: Duration) {}
    fn kill_leftover(&self, _p: u32, _s: Option<u64>) {}
    fn running(&self) -> usize {
        0
    }
}
pub fn proc_start_time(_pid: u32) -> Option<u64> {
    None
}
