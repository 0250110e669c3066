//! Input frames from a terminal client: `[kind u8][length u32 BE][payload]`, kind 0 input,
//! 1 resize as rows and columns u16 BE, 2 end of input.

use std::os::fd::{AsFd, OwnedFd};

/// Decodes input frames across reads.
#[derive(Default)]
pub struct Frames {
    pending: Vec<u8>,
}

impl Frames {
    /// Applies every whole frame in `data` (and what was left before) to the terminal `master`.
    pub fn feed(&mut self, data: &[u8], master: &OwnedFd) {
        self.pending.extend_from_slice(data);
        loop {
            if self.pending.len() < 5 {
                return;
            }
            let len = u32::from_be_bytes([
                self.pending[1],
                self.pending[2],
                self.pending[3],
                self.pending[4],
            ]) as usize;
            if self.pending.len() < 5 + len {
                return;
            }
            let kind = self.pending[0];
            let payload: Vec<u8> = self.pending.drain(..5 + len).skip(5).collect();
            match kind {
                0 => {
                    let _ = write_all(master, &payload);
                }
                1 if payload.len() == 4 => {
                    let rows = u16::from_be_bytes([payload[0], payload[1]]);
                    let cols = u16::from_be_bytes([payload[2], payload[3]]);
                    let _ = condo_sys::process::set_winsize(master.as_fd(), rows, cols);
                }
                _ => {}
            }
        }
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(fd, data)?;
        data = &data[n..];
    }
    Ok(())
}
