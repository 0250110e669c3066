//! Published ports, rate limits, byte counters and monthly allowances of containers.

use std::collections::BTreeMap;

use netlink_packet_route::link::InfoKind;

use crate::error::{Error, Result};
use crate::manager::{Networks, Undo};
use crate::netlink::LinkCounters;
use crate::spec::PortSpec;
use crate::state::{Allowance, AllowancePolicy, PublishedPort, RateLimit};
use crate::tc;

/// The ifb device that shapes traffic from the container behind `host_veth`.
pub fn ifb_name(host_veth: &str) -> String {
    format!("ci{}", host_veth.trim_start_matches("cv"))
}

/// A container's traffic as its host veth counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes sent by the container.
    pub sent_bytes: u64,
    /// Bytes received by the container.
    pub received_bytes: u64,
    /// Packets sent by the container.
    pub sent_packets: u64,
    /// Packets received by the container.
    pub received_packets: u64,
}

/// What [`Networks::check_allowances`] did to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowanceEvent {
    /// The network.
    pub network: String,
    /// The container.
    pub container: String,
    /// Bytes used this period.
    pub used: u64,
    /// True when the policy came into force, false when a new month lifted it.
    pub exceeded: bool,
}

/// The current month in UTC as `YYYY-MM`.
pub fn current_period() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

impl Networks {
    /// Publishes a container port on the host (DNAT from other hosts and from 127.0.0.1).
    pub fn publish(&mut self, network: &str, container: &str, port: PortSpec) -> Result<()> {
        self.policy.check(&port)?;
        let _g = self.state.lock()?;
        let taken = self
            .records
            .values()
            .flat_map(|r| r.leases.values())
            .any(|l| {
                l.ports.iter().any(|p| {
                    p.protocol == port.protocol
                        && p.host_port == port.host_port
                        && (p.host_ip.is_none()
                            || port.host_ip.is_none()
                            || p.host_ip == port.host_ip)
                })
            });
        if taken {
            let ip = port
                .host_ip
                .map(|i| i.to_string())
                .unwrap_or_else(|| "*".into());
            return Err(Error::PortTaken(format!(
                "{ip}:{}/{}",
                port.host_port,
                port.protocol.as_str()
            )));
        }
        let rec = self.record(network)?.clone();
        let mut next = rec.clone();
        let lease = next
            .leases
            .get_mut(container)
            .ok_or_else(|| Error::NotAttached {
                network: network.to_string(),
                container: container.to_string(),
            })?;
        lease.ports.push(PublishedPort {
            host_ip: port.host_ip,
            host_port: port.host_port,
            container_port: port.container_port,
            protocol: port.protocol,
        });
        self.commit(rec, next)
    }

    /// Withdraws a published port (matched by host address, port and protocol).
    pub fn unpublish(&mut self, network: &str, container: &str, port: PortSpec) -> Result<()> {
        let _g = self.state.lock()?;
        let rec = self.record(network)?.clone();
        let mut next = rec.clone();
        let lease = next
            .leases
            .get_mut(container)
            .ok_or_else(|| Error::NotAttached {
                network: network.to_string(),
                container: container.to_string(),
            })?;
        let before = lease.ports.len();
        lease.ports.retain(|p| {
            !(p.host_ip == port.host_ip
                && p.host_port == port.host_port
                && p.protocol == port.protocol)
        });
        if lease.ports.len() == before {
            return Err(crate::error::invalid(
                "host_port",
                format!("{} is not published by {container}", port.host_port),
            ));
        }
        self.commit(rec, next)
    }

    /// Saves `next` and applies the rules; on failure puts `prev` back everywhere.
    fn commit(
        &mut self,
        prev: crate::state::NetworkRecord,
        next: crate::state::NetworkRecord,
    ) -> Result<()> {
        let name = next.name.clone();
        let undo = vec![Undo::RestoreRecord(Box::new(prev)), Undo::SyncFirewall];
        let res = self.state.save(&next).map_err(Error::from).and_then(|()| {
            self.records.insert(name, next);
            self.sync_firewall()
        });
        if res.is_err() {
            self.run_undo(undo);
        }
        res
    }

    /// Sets a container's rate limits live (either direction `None` removes that limit).
    pub fn set_rate(&mut self, network: &str, container: &str, rate: RateLimit) -> Result<()> {
        let _g = self.state.lock()?;
        let rec = self.record(network)?.clone();
        let lease = self.lease(network, container)?.clone();
        let throttle = match (lease.usage.exceeded, lease.allowance.map(|a| a.policy)) {
            (true, Some(AllowancePolicy::Throttle { bps })) => Some(bps),
            _ => None,
        };
        self.apply_rate(&lease.host_veth, &lease.rate, &effective(rate, throttle))?;
        let mut next = rec;
        if let Some(l) = next.leases.get_mut(container) {
            l.rate = rate;
        }
        self.state.save(&next)?;
        self.records.insert(network.to_string(), next);
        Ok(())
    }

    /// Moves the kernel from the `old` limits to the `new` ones.
    fn apply_rate(&mut self, veth: &str, old: &RateLimit, new: &RateLimit) -> Result<()> {
        let ifb = ifb_name(veth);
        let mut cmds = Vec::new();
        match (old.ingress_bps, new.ingress_bps) {
            (_, Some(r)) => cmds.extend(tc::shape_commands(veth, r)),
            (Some(_), None) => cmds.extend(tc::unshape_commands(veth)),
            (None, None) => {}
        }
        match new.egress_bps {
            Some(r) => {
                if self.nl.link_index(&ifb)?.is_none() {
                    self.nl.create_link(&ifb, InfoKind::Ifb, None)?;
                    cmds.extend(tc::redirect_commands(veth, &ifb));
                }
                cmds.extend(tc::shape_commands(&ifb, r));
            }
            None => {
                if self.nl.delete_link(&ifb)? {
                    cmds.push(format!("qdisc del dev {veth} ingress"));
                }
            }
        }
        let res = self.tc.run(&cmds);
        if res.is_err() && old.egress_bps.is_none() {
            let _ = self.nl.delete_link(&ifb);
        }
        Ok(res?)
    }

    /// The container's traffic so far (since its veth was created).
    pub fn traffic(&mut self, network: &str, container: &str) -> Result<Traffic> {
        let veth = self.lease(network, container)?.host_veth.clone();
        let c: LinkCounters = self.nl.counters(&veth)?.unwrap_or_default();
        // The host end receives what the container sends.
        Ok(Traffic {
            sent_bytes: c.rx_bytes,
            received_bytes: c.tx_bytes,
            sent_packets: c.rx_packets,
            received_packets: c.tx_packets,
        })
    }

    /// Sets (or with `None` removes) a container's monthly allowance.
    pub fn set_allowance(
        &mut self,
        network: &str,
        container: &str,
        allowance: Option<Allowance>,
    ) -> Result<()> {
        let t = self.traffic(network, container)?;
        let _g = self.state.lock()?;
        let rec = self.record(network)?.clone();
        let mut next = rec.clone();
        let period = current_period();
        // What the container used earlier this month, on an earlier attach.
        let earlier = next.meters.remove(container).filter(|m| m.period == period);
        let Some(l) = next.leases.get_mut(container) else {
            return Err(Error::NotAttached {
                network: network.to_string(),
                container: container.to_string(),
            });
        };
        let old_eff = effective(l.rate, throttle_of(l));
        l.allowance = allowance;
        if l.usage.period.is_empty() {
            let earlier = earlier.unwrap_or_default();
            l.usage = crate::state::AllowanceUsage {
                period,
                carried: earlier.carried,
                baseline: t.sent_bytes + t.received_bytes,
                exceeded: earlier.exceeded,
            };
        }
        if allowance.is_none() {
            l.usage.exceeded = false;
        }
        let (veth, new_eff) = (l.host_veth.clone(), effective(l.rate, throttle_of(l)));
        if old_eff != new_eff {
            self.apply_rate(&veth, &old_eff, &new_eff)?;
        }
        self.commit(rec, next)
    }

    /// Bytes each container moved in `period` (`YYYY-MM`), both directions, over every attach
    /// of the month: attached ones as their veth counts now, released ones as they left.
    pub fn monthly_usage(&mut self, period: &str) -> Result<BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        let leases: Vec<(String, String, crate::state::AllowanceUsage)> = self
            .records
            .values()
            .flat_map(|r| {
                r.leases
                    .values()
                    .map(|l| (l.host_veth.clone(), l.container.clone(), l.usage.clone()))
            })
            .collect();
        for (veth, ctr, u) in leases {
            if u.period != period {
                continue;
            }
            let c: LinkCounters = self.nl.counters(&veth)?.unwrap_or_default();
            let total = c.rx_bytes + c.tx_bytes;
            // Below the baseline, the veth was made again: it counts from 0.
            let now = if total >= u.baseline {
                total - u.baseline
            } else {
                u.baseline + total
            };
            *out.entry(ctr).or_default() += u.carried + now;
        }
        for r in self.records.values() {
            for (ctr, m) in &r.meters {
                if m.period == period {
                    *out.entry(ctr.clone()).or_default() += m.carried;
                }
            }
        }
        Ok(out)
    }

    /// Stops all traffic of a container (`held`) whatever its own allowance, or lets it
    /// through again: its owner's monthly traffic is used up, or no longer is.
    pub fn set_held(&mut self, network: &str, container: &str, held: bool) -> Result<()> {
        let _g = self.state.lock()?;
        let rec = self.record(network)?.clone();
        let mut next = rec.clone();
        let Some(l) = next.leases.get_mut(container) else {
            return Err(Error::NotAttached {
                network: network.to_string(),
                container: container.to_string(),
            });
        };
        if l.held == held {
            return Ok(());
        }
        l.held = held;
        self.commit(rec, next)?;
        tracing::info!(network = %network, container = %container, held, "owner's traffic");
        Ok(())
    }

    /// Forgets what a container used of its allowances (it is gone for good).
    pub fn forget_usage(&mut self, container: &str) -> Result<()> {
        let _g = self.state.lock()?;
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            let Some(mut rec) = self.state.load(&name)? else {
                continue;
            };
            if rec.meters.remove(container).is_some() {
                self.state.save(&rec)?;
            }
            self.records.insert(name, rec);
        }
        Ok(())
    }

    /// Meters every container's traffic for `period` (`YYYY-MM`, see [`current_period`]),
    /// compares it with the container's allowance and puts the policy in force or lifts it;
    /// call it periodically.
    pub fn check_allowances(&mut self, period: &str) -> Result<Vec<AllowanceEvent>> {
        let mut events = Vec::new();
        let keys: Vec<(String, String)> = self
            .records
            .values()
            .flat_map(|r| {
                r.leases
                    .values()
                    .map(|l| (r.name.clone(), l.container.clone()))
            })
            .collect();
        for (net, ctr) in keys {
            let t = self.traffic(&net, &ctr)?;
            let total = t.sent_bytes + t.received_bytes;
            let _g = self.state.lock()?;
            let rec = self.record(&net)?.clone();
            let mut next = rec.clone();
            let Some(l) = next.leases.get_mut(&ctr) else {
                continue;
            };
            let old_eff = effective(l.rate, throttle_of(l));
            let was = l.usage.exceeded;
            if total < l.usage.baseline {
                // The veth was recreated: keep what the old one counted.
                l.usage.carried += l.usage.baseline;
                l.usage.baseline = 0;
            }
            if l.usage.period != period {
                l.usage.period = period.to_string();
                l.usage.baseline = total;
                l.usage.carried = 0;
                l.usage.exceeded = false;
            }
            let used = l.usage.carried + total - l.usage.baseline;
            if let Some(allow) = l.allowance {
                if !l.usage.exceeded && used >= allow.bytes_per_month {
                    l.usage.exceeded = true;
                }
            }
            if l.usage.exceeded == was {
                if next != rec {
                    self.state.save(&next)?;
                    self.records.insert(net.clone(), next);
                }
                continue;
            }
            let (veth, new_eff, now) = (
                l.host_veth.clone(),
                effective(l.rate, throttle_of(l)),
                l.usage.exceeded,
            );
            if old_eff != new_eff {
                self.apply_rate(&veth, &old_eff, &new_eff)?;
            }
            self.commit(rec, next)?;
            tracing::info!(network = %net, container = %ctr, used, exceeded = now, "allowance");
            events.push(AllowanceEvent {
                network: net,
                container: ctr,
                used,
                exceeded: now,
            });
        }
        Ok(events)
    }
}

fn throttle_of(l: &crate::state::Lease) -> Option<u64> {
    match (l.usage.exceeded, l.allowance.map(|a| a.policy)) {
        (true, Some(AllowancePolicy::Throttle { bps })) => Some(bps),
        _ => None,
    }
}

/// The limits in force: the configured ones, lowered by a throttle.
fn effective(rate: RateLimit, throttle: Option<u64>) -> RateLimit {
    let low = |r: Option<u64>| match (r, throttle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    RateLimit {
        ingress_bps: low(rate.ingress_bps),
        egress_bps: low(rate.egress_bps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_and_effective_limits() {
        let p = current_period();
        assert_eq!(p.len(), 7);
        assert_eq!(&p[4..5], "-");
        let r = RateLimit {
            ingress_bps: Some(5),
            egress_bps: None,
        };
        assert_eq!(
            effective(r, Some(3)),
            RateLimit {
                ingress_bps: Some(3),
                egress_bps: Some(3)
            }
        );
        assert_eq!(effective(r, None), r);
        assert_eq!(ifb_name("cv0123"), "ci0123");
    }
}
