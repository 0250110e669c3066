//! Rate limits on a container's host-side veth through Debian's `tc`, behind a trait.
//!
//! Traffic towards the container is shaped by a tbf qdisc at the root of the host veth;
//! traffic from the container arrives on the host veth's ingress, is redirected to an ifb
//! device and shaped by a tbf qdisc there.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Why `tc` failed.
#[derive(Debug, thiserror::Error)]
pub enum TcError {
    /// The binary could not be run.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The binary path.
        binary: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// tc refused a command.
    #[error("tc refused {commands:?}: {stderr}")]
    Refused {
        /// The commands sent.
        commands: Vec<String>,
        /// What tc printed.
        stderr: String,
    },
}

/// Runs traffic-control commands (`tc -batch` lines); tests use [`RecordingTc`].
pub trait TrafficControl: Send + Sync {
    /// Runs the commands in order, stopping at the first failure.
    fn run(&self, commands: &[String]) -> Result<(), TcError>;
}

/// Drives the `tc` binary with a batch on stdin.
#[derive(Debug, Clone)]
pub struct TcCli {
    binary: PathBuf,
}

impl Default for TcCli {
    fn default() -> Self {
        TcCli {
            binary: PathBuf::from("tc"),
        }
    }
}

impl TrafficControl for TcCli {
    fn run(&self, commands: &[String]) -> Result<(), TcError> {
        if commands.is_empty() {
            return Ok(());
        }
        let spawn_err = |source| TcError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        };
        let mut child = Command::new(&self.binary)
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all((commands.join("\n") + "\n").as_bytes())
                .map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(TcError::Refused {
                commands: commands.to_vec(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// A fake for unit tests: records the commands.
#[derive(Debug, Default)]
pub struct RecordingTc {
    /// Every command run, oldest first.
    pub commands: Mutex<Vec<String>>,
}

impl TrafficControl for RecordingTc {
    fn run(&self, commands: &[String]) -> Result<(), TcError> {
        if let Ok(mut c) = self.commands.lock() {
            c.extend(commands.iter().cloned());
        }
        Ok(())
    }
}

/// The bucket size for `rate` bits per second: about 10 ms of traffic, at least 16 KiB.
fn burst_bytes(rate: u64) -> u64 {
    (rate / 8 / 100).max(16 * 1024)
}

/// Commands that shape traffic leaving `dev` to `rate` bits per second.
pub fn shape_commands(dev: &str, rate: u64) -> Vec<String> {
    vec![format!(
        "qdisc replace dev {dev} root tbf rate {rate}bit burst {} latency 50ms",
        burst_bytes(rate)
    )]
}

/// Commands that remove the shaping of traffic leaving `dev`.
pub fn unshape_commands(dev: &str) -> Vec<String> {
    vec![format!("qdisc del dev {dev} root")]
}

/// Commands that redirect everything arriving on `dev` to the ifb device `ifb`.
pub fn redirect_commands(dev: &str, ifb: &str) -> Vec<String> {
    vec![
        format!("qdisc replace dev {dev} handle ffff: ingress"),
        format!(
            "filter replace dev {dev} parent ffff: protocol all prio 1 u32 match u32 0 0 \
             action mirred egress redirect dev {ifb}"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_device_and_rate() {
        let c = shape_commands("cv0123", 10_000_000);
        assert_eq!(
            c,
            vec!["qdisc replace dev cv0123 root tbf rate 10000000bit burst 16384 latency 50ms"]
        );
        assert_eq!(burst_bytes(1_000_000_000), 1_250_000);
        let r = redirect_commands("cv1", "ci1");
        assert!(r[1].ends_with("redirect dev ci1"));
        assert_eq!(unshape_commands("cv1"), vec!["qdisc del dev cv1 root"]);
    }
}
