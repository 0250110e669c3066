//! A small synchronous rtnetlink client: links, addresses, routes and link counters.
//!
//! One socket per network namespace; a socket opened inside a container's namespace keeps
//! working there after the opening thread has gone back, so no thread stays switched.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A netlink request that the kernel refused or that could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("netlink {op} {target}: {source}")]
pub struct NetlinkError {
    /// What was asked (`create veth`, `add address`, …).
    pub op: &'static str,
    /// The thing it was asked for (a link name, an address).
    pub target: String,
    /// The kernel's or the socket's answer.
    #[source]
    pub source: io::Error,
}

impl NetlinkError {
    /// The errno behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// Byte and packet counters of one link, as the kernel keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Bytes the link received.
    pub rx_bytes: u64,
    /// Bytes the link sent.
    pub tx_bytes: u64,
    /// Packets the link received.
    pub rx_packets: u64,
    /// Packets the link sent.
    pub tx_packets: u64,
}

/// A synchronous rtnetlink socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

type Res<T> = Result<T, NetlinkError>;

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: vec![0; 65536],
        })
    }

    /// Opens a socket inside the network namespace that `ns` refers to.
    pub fn open_in(ns: BorrowedFd<'_>) -> io::Result<Self> {
        std::thread::scope(|s| {
            s.spawn(move || {
                condo_sys::netns::setns_net(ns)?;
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = flags | NLM_F_REQUEST;
        hdr.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0)?;
        Ok(self.seq)
    }

    /// Sends a request and collects the answers until the ack (or the end of a dump).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        let mut found = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&self.buf[off..n])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(found),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(found),
                        NetlinkPayload::InnerMessage(m) => found.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    fn ack(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &'static str,
        target: &str,
    ) -> Res<()> {
        self.request(msg, flags)
            .map(|_| ())
            .map_err(|source| NetlinkError {
                op,
                target: target.to_string(),
                source,
            })
    }

    /// The index of the link called `name`, or `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Res<Option<u32>> {
        Ok(self.get_link(name)?.map(|m| m.header.index))
    }

    fn get_link(&mut self, name: &str) -> Res<Option<LinkMessage>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(found) => Ok(found.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(source) => Err(NetlinkError {
                op: "get link",
                target: name.to_string(),
                source,
            }),
        }
    }

    /// Names of every link in the namespace.
    pub fn link_names(&mut self) -> Res<Vec<String>> {
        let found = self
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|source| NetlinkError {
                op: "list links",
                target: String::new(),
                source,
            })?;
        Ok(found
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Creates a link of `kind` (bridge, ifb) called `name`, up, and returns its index.
    pub fn create_link(&mut self, name: &str, kind: InfoKind, mtu: Option<u32>) -> Res<u32> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]));
        self.ack(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "create link",
            name,
        )?;
        self.link_index(name)?.ok_or_else(|| NetlinkError {
            op: "create link",
            target: name.to_string(),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })
    }

    /// Creates a veth pair: `host` up and enslaved to `controller`, and `peer` (still down: the
    /// kernel refuses to open it here) with the hardware address `peer_mac` inside the
    /// namespace `peer_ns`, in one request.
    pub fn create_veth(
        &mut self,
        host: &str,
        controller: u32,
        peer: &str,
        peer_mac: [u8; 6],
        peer_ns: BorrowedFd<'_>,
        mtu: Option<u32>,
    ) -> Res<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        p.attributes.push(LinkAttribute::Address(peer_mac.to_vec()));
        p.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes.push(LinkAttribute::Controller(controller));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.ack(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "create veth",
            host,
        )
    }

    /// Sets the link `index` up.
    pub fn set_up(&mut self, index: u32, name: &str) -> Res<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.ack(RouteNetlinkMessage::SetLink(m), 0, "set link up", name)
    }

    /// Deletes the link called `name`; `Ok(false)` when it did not exist.
    pub fn delete_link(&mut self, name: &str) -> Res<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.ack(RouteNetlinkMessage::DelLink(m), 0, "delete link", name) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `addr/prefix` to the link `index` (IPv6 without duplicate detection).
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Res<()> {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = prefix;
        match addr {
            IpAddr::V4(_) => {
                m.header.family = AddressFamily::Inet;
                m.attributes.push(AddressAttribute::Local(addr));
            }
            IpAddr::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                m.header.flags = AddressHeaderFlags::Nodad;
            }
        }
        m.attributes.push(AddressAttribute::Address(addr));
        let target = format!("{addr}/{prefix}");
        self.ack(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "add address",
            &target,
        )
    }

    /// Adds a default route through `gateway` on the link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> Res<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = if gateway.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Gateway(match gateway {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        }));
        m.attributes.push(RouteAttribute::Oif(index));
        self.ack(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            "add default route via",
            &gateway.to_string(),
        )
    }

    /// The destinations (address and prefix length) of every route in every table; a default
    /// route shows as the unspecified address with length 0.
    pub fn route_destinations(&mut self) -> Res<Vec<(IpAddr, u8)>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RouteMessage::default();
            m.header.address_family = family;
            let found = self
                .request(RouteNetlinkMessage::GetRoute(m), NLM_F_DUMP)
                .map_err(|source| NetlinkError {
                    op: "list routes",
                    target: String::new(),
                    source,
                })?;
            for r in found {
                let RouteNetlinkMessage::NewRoute(r) = r else {
                    continue;
                };
                let dst = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
                    RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                    _ => None,
                });
                let unspecified = match family {
                    AddressFamily::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    _ => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                };
                out.push((
                    dst.unwrap_or(unspecified),
                    r.header.destination_prefix_length,
                ));
            }
        }
        Ok(out)
    }

    /// The kernel's counters of the link called `name`.
    pub fn counters(&mut self, name: &str) -> Res<Option<LinkCounters>> {
        let Some(link) = self.get_link(name)? else {
            return Ok(None);
        };
        Ok(link.attributes.into_iter().find_map(|a| match a {
            LinkAttribute::Stats64(s) => Some(LinkCounters {
                rx_bytes: s.rx_bytes,
                tx_bytes: s.tx_bytes,
                rx_packets: s.rx_packets,
                tx_packets: s.tx_packets,
            }),
            _ => None,
        }))
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
