//! Helpers for the root tests: private network namespaces made by the test itself.

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use condo_net::{Networks, NftCli, Options, PortPolicy, TcCli};

/// Runs `f` on a thread moved into a new network namespace (with lo up), so nothing the
/// test does touches the host's own interfaces or nftables tables.
pub fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            condo_sys::netns::unshare_net().expect("unshare(CLONE_NEWNET) needs root");
            lo_up();
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn lo_up() {
    let mut nl = condo_net::netlink::Netlink::open().unwrap();
    let lo = nl.link_index("lo").unwrap().unwrap();
    nl.set_up(lo, "lo").unwrap();
}

/// Makes a fresh network namespace (a "container") and returns an fd that keeps it alive.
pub fn new_container_ns() -> OwnedFd {
    std::thread::spawn(|| {
        condo_sys::netns::unshare_net().unwrap();
        File::open("/proc/thread-self/ns/net").unwrap().into()
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread inside the namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &OwnedFd, f: impl FnOnce() -> T + Send + 'static) -> T {
    let fd = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        condo_sys::netns::setns_net(fd.as_fd()).unwrap();
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Spawns a thread inside `ns` without waiting for it.
pub fn spawn_in_ns<T: Send + 'static>(
    ns: &OwnedFd,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let fd = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        condo_sys::netns::setns_net(fd.as_fd()).unwrap();
        f()
    })
}

/// Opens the manager on `dir` with the real nft and tc binaries.
pub fn open(dir: &Path) -> Networks {
    Networks::open(Options {
        state_dir: dir.to_path_buf(),
        port_policy: PortPolicy::default(),
        dns_upstreams: Some(Vec::new()),
        firewall: Arc::new(NftCli::default()),
        tc: Arc::new(TcCli::default()),
    })
    .unwrap()
}

/// The nftables tables of the current namespace.
pub fn nft_tables() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Names of links in the current namespace.
pub fn links() -> Vec<String> {
    condo_net::netlink::Netlink::open()
        .unwrap()
        .link_names()
        .unwrap()
}

/// A network spec with the given name and subnet.
pub fn spec(name: &str, subnet: &str) -> condo_net::NetworkSpec {
    condo_net::NetworkSpec {
        name: name.into(),
        subnet: subnet.into(),
        ..Default::default()
    }
}

/// An attach request for a container namespace.
pub fn req(id: &str, ns: &OwnedFd) -> condo_net::AttachRequest {
    condo_net::AttachRequest {
        container: id.into(),
        hostname: id.into(),
        aliases: vec![],
        netns: condo_net::Netns::Fd(ns.try_clone().unwrap()),
    }
}
