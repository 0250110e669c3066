//! `condo-monitor-watch`: what a monitor becomes once its container runs (see
//! `condo_monitor::watch`). It only holds the container's output, reaps and records the exit,
//! so the process that lives as long as the container stays small: it even starts without
//! the Rust runtime's start-up (see `condo_sys::c_main`), which would map a third of the
//! program for one look at /proc/self/maps.
#![no_main]

use condo_monitor::watch::{finish, Handoff, Watch};

condo_sys::c_main!(run);

fn run() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let h = match Handoff::parse(&args) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("condo-monitor-watch: {e}");
            return 2;
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
    0
}
