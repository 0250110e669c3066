//! `condo-monitor-watch`: what a monitor becomes once its container runs (see
//! `condo_monitor::watch`). It only holds the container's output, reaps and records the exit,
//! so the process that lives as long as the container stays small.

use condo_monitor::watch::{finish, Handoff, Watch};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let h = match Handoff::parse(&args) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("condo-monitor-watch: {e}");
            std::process::exit(2);
        }
    };
    let code = match Watch::adopt(&h) {
        Ok(mut w) => w.supervise(),
        Err(e) => {
            // The container runs unwatched: better ended than lost.
            eprintln!("condo-monitor-watch: {e}");
            let _ = condo_sys::process::kill(h.pid, libc::SIGKILL);
            let _ = condo_sys::process::waitpid(h.pid);
            255
        }
    };
    finish(&h, code);
}
