//! Messages between the runtime process and the container's init over a socket pair.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// One end of the sequenced-packet socket pair.
pub struct Channel {
    fd: OwnedFd,
}

/// A message kind (the first byte of each packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// Parent → child: id maps are in place, go on.
    Go = b'G',
    /// Parent → child: the init sits in its cgroups (on v1 this takes the kernel an RCU grace
    /// period, so the init sets up its mounts meanwhile).
    Placed = b'p',
    /// Child → parent: run the createRuntime and prestart hooks now.
    RunHooks = b'H',
    /// Parent → child: the hooks ran.
    HooksDone = b'h',
    /// Child → parent: set up, waiting to start (may carry the seccomp notify fd).
    Ready = b'R',
    /// Parent → child: start the user program (foreground `run`).
    Start = b'S',
    /// Child → parent: a terminal master for the caller (carries the fd).
    Console = b'C',
    /// Child → parent: the pid of the real init when an extra fork was needed.
    Pid = b'P',
    /// Either way: failure, with a message.
    Error = b'E',
}

impl Tag {
    fn from_byte(b: u8) -> Option<Tag> {
        Some(match b {
            b'G' => Tag::Go,
            b'p' => Tag::Placed,
            b'H' => Tag::RunHooks,
            b'h' => Tag::HooksDone,
            b'R' => Tag::Ready,
            b'S' => Tag::Start,
            b'C' => Tag::Console,
            b'P' => Tag::Pid,
            b'E' => Tag::Error,
            _ => return None,
        })
    }
}

/// A received message.
pub struct Message {
    /// Its kind.
    pub tag: Tag,
    /// Its payload.
    pub data: Vec<u8>,
    /// Descriptors that came with it.
    pub fds: Vec<OwnedFd>,
}

/// Creates the socket pair (close-on-exec both ends).
pub fn pair() -> io::Result<(Channel, Channel)> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends a message with optional descriptors.
    pub fn send(&self, tag: Tag, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 + data.len());
        buf.push(tag as u8);
        buf.extend_from_slice(data);
        condo_sys::fdpass::send_with_fds(self.fd.as_fd(), &buf, fds)
    }

    /// Receives one message; an end of stream is an `UnexpectedEof` error.
    pub fn recv(&self) -> io::Result<Message> {
        let mut buf = vec![0u8; 64 * 1024];
        // A peer that closes with our messages unread makes the next receive report
        // ECONNRESET once; what it sent before closing is still queued behind that.
        let (n, fds) = match condo_sys::fdpass::recv_with_fds(self.fd.as_fd(), &mut buf, 4) {
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                condo_sys::fdpass::recv_with_fds(self.fd.as_fd(), &mut buf, 4)?
            }
            r => r?,
        };
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let tag =
            Tag::from_byte(buf[0]).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        buf.truncate(n);
        buf.remove(0);
        Ok(Message {
            tag,
            data: buf,
            fds,
        })
    }

    /// The raw descriptor.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
