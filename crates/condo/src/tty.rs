//! `exec -it` and `attach`: a terminal in a container over an upgraded HTTP connection.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use condo_api::{frame, ErrorBody, ExecCreate, EXEC_UPGRADE};

use crate::client::{enc, Client, Conn};

/// Puts the local terminal in raw mode until dropped.
struct Raw(Option<rustix::termios::Termios>);

impl Raw {
    fn enter() -> Raw {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        Raw(saved)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn size() -> Option<[u16; 2]> {
    rustix::termios::tcgetwinsize(std::io::stdin())
        .ok()
        .map(|w| [w.ws_row, w.ws_col])
}

fn send(w: &Mutex<Conn>, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
    w.write_all(&frame::encode(kind, payload))
}

/// Runs the exec; returns the process's exit code.
pub fn exec(c: &Client, container: &str, mut x: ExecCreate) -> Result<i32> {
    x.size = size();
    let body = serde_json::to_vec(&x)?;
    session(
        c,
        &format!("/v1/containers/{}/exec", enc(container)),
        &body,
        None,
    )
}

/// Ctrl-P then Ctrl-Q: leave an attached container running.
const DETACH: [u8; 2] = [0x10, 0x11];

/// Attaches to the terminal of a running container; returns its exit code once it ends, or
/// `None` when the user detached with Ctrl-P Ctrl-Q.
pub fn attach(c: &Client, container: &str) -> Result<Option<i32>> {
    let detached = Arc::new(AtomicBool::new(false));
    let code = session(
        c,
        &format!("/v1/containers/{}/attach", enc(container)),
        &[],
        Some(detached.clone()),
    );
    if detached.load(Ordering::SeqCst) {
        return Ok(None);
    }
    code.map(Some)
}

/// Attaches as [`attach`] does, for `run -it`; detaching there is not offered.
pub fn attach_run(c: &Client, container: &str) -> Result<i32> {
    session(
        c,
        &format!("/v1/containers/{}/attach", enc(container)),
        &[],
        None,
    )
}

/// One terminal session over an upgraded request to `path`. An attach sends its size first,
/// and with `detach` the keys Ctrl-P Ctrl-Q end the session (setting it) instead of reaching
/// the container.
fn session(c: &Client, path: &str, body: &[u8], detach: Option<Arc<AtomicBool>>) -> Result<i32> {
    let send_size = body.is_empty();
    let mut resp = c.send("POST", path, Some(body), Some(EXEC_UPGRADE))?;
    if resp.status != 101 {
        let mut text = String::new();
        resp.body.read_to_string(&mut text)?;
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => anyhow::Error::new(e),
            Err(_) => anyhow!("condod answered {}: {}", resp.status, text.trim()),
        });
    }
    let mut reader = resp.body.into_inner();
    let writer = Arc::new(Mutex::new(reader.get_ref().try_clone()?));
    let raw = Raw::enter();
    if let (true, Some([r, c])) = (send_size, size()) {
        let mut p = r.to_be_bytes().to_vec();
        p.extend_from_slice(&c.to_be_bytes());
        let _ = send(&writer, frame::RESIZE, &p);
    }
    let w = writer.clone();
    let shut = reader.get_ref().try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        let mut prev = 0u8;
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    // An attached container outlives our input; an exec's process gets EOF.
                    if detach.is_none() {
                        let _ = send(&w, frame::END, &[]);
                    }
                    return;
                }
                Ok(n) => {
                    if let Some(flag) = &detach {
                        // Where Ctrl-Q ends the sequence (the Ctrl-P may be in the last read).
                        let mut last = prev;
                        let hit = buf[..n].iter().position(|&b| {
                            let seq = [last, b] == DETACH;
                            last = b;
                            seq
                        });
                        prev = buf[n - 1];
                        if let Some(i) = hit {
                            // What came before the keys still goes (less a Ctrl-P in it).
                            let before = i.saturating_sub(1);
                            if before > 0 {
                                let _ = send(&w, frame::INPUT, &buf[..before]);
                            }
                            flag.store(true, Ordering::SeqCst);
                            shut.shutdown();
                            return;
                        }
                    }
                    if send(&w, frame::INPUT, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let w = writer.clone();
    std::thread::spawn(move || {
        // Polling the size keeps us free of signal handlers.
        let mut last = size();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = size();
            if now != last {
                if let Some([r, c]) = now {
                    let mut p = r.to_be_bytes().to_vec();
                    p.extend_from_slice(&c.to_be_bytes());
                    if send(&w, frame::RESIZE, &p).is_err() {
                        return;
                    }
                }
                last = now;
            }
        }
    });
    let mut out = std::io::stdout();
    loop {
        let mut head = [0u8; 5];
        if reader.read_exact(&mut head).is_err() {
            drop(raw);
            bail!("the connection to condod closed before the process ended");
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload)?;
        match head[0] {
            frame::OUTPUT => {
                crate::output::to_stdout(out.write_all(&payload).and_then(|_| out.flush()))?;
            }
            frame::ERROR => {
                drop(raw);
                bail!("{}", String::from_utf8_lossy(&payload));
            }
            frame::EXIT if payload.len() == 4 => {
                drop(raw);
                return Ok(i32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]));
            }
            _ => {}
        }
    }
}
