//! For the daemon's tests that make networks: a network namespace of their own.

/// Moves the calling test's thread (and so every daemon it starts) into a new network
/// namespace with loopback up: bridges and rules the daemon makes never touch the host's.
pub fn private_netns() {
    condo_sys::netns::unshare_net().expect("unshare(CLONE_NEWNET) needs root");
    let mut nl = condo_net::netlink::Netlink::open().unwrap();
    let lo = nl.link_index("lo").unwrap().unwrap();
    nl.set_up(lo, "lo").unwrap();
}
