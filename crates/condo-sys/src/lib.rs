//! Raw Linux system calls that the usual crates (rustix, libc wrappers) lack.
//!
//! This is the only crate of Condo allowed to hold `unsafe` code; every block carries a
//! `// SAFETY:` line saying why it is sound.
#![allow(unsafe_code)]

pub mod bpf;
pub mod btrfs;
pub mod capability;
pub mod fdpass;
pub mod fsfreeze;
pub mod mount;
pub mod netns;
pub mod ns;
pub mod process;
pub mod sched;
pub mod seccomp;

use std::ffi::CStr;
use std::io;

/// Turns a `-1`-on-error return value into an `io::Result`.
pub(crate) fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`check`] for the `c_int` returns of libc wrappers.
pub(crate) fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Converts a Rust string into a C string, reporting an interior NUL as `InvalidInput`.
pub fn cstring(s: &str) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Replaces the current process image (`execve`); returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: every pointer refers to a NUL-terminated string that outlives the call, and both
    // arrays are NULL-terminated as execve requires.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// Makes `$run` (a `fn() -> i32`) the C `main` of a `#![no_main]` program: the C library's
/// start-up calls it directly, without the Rust runtime's own start-up before it (which, with
/// glibc, reads and parses /proc/self/maps to find the main thread's stack and so maps much
/// of the C library's stdio and scanf code into the process). What that start-up would set
/// and such a program goes without: SIGPIPE ignored (write to sockets with `MSG_NOSIGNAL`),
/// the guard that reports a stack overflow by name (it still ends the process). Arguments
/// (`std::env::args`) and everything else of `std` work as usual.
#[macro_export]
macro_rules! c_main {
    ($run:path) => {
        // SAFETY: the program's one `main` symbol (its crate is `#![no_main]`, so the Rust
        // runtime defines none), with the signature the C start-up calls it with.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn main(
            _argc: ::std::os::raw::c_int,
            _argv: *const *const ::std::os::raw::c_char,
        ) -> ::std::os::raw::c_int {
            $run()
        }
    };
}

/// Ends the process at once without running destructors or flushing stdio (`_exit`).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}
