//! What `condo-monitor` shares with `condo-monitor-watch`, the small executable that watches a
//! started container for the rest of its life: the log, terminal input frames, the watch loop.

pub mod frames;
pub mod logfile;
pub mod watch;
