use super::*;

fn net(bridge: &str, subnet: &str, gw: &str) -> NetworkRules {
    NetworkRules {
        bridge: bridge.into(),
        subnet: subnet.parse().unwrap(),
        gateway: gw.parse().unwrap(),
        subnet6: None,
        masquerade: true,
    }
}

fn rules_of(batch: &Value, chain: &str) -> Vec<String> {
    batch["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.get("add")?.get("rule"))
        .filter(|r| r["chain"] == chain)
        .map(|r| r["expr"].to_string())
        .collect()
}

#[test]
fn empty_state_removes_the_table() {
    let b = ruleset(&FirewallState::default());
    let cmds = b["nftables"].as_array().unwrap();
    assert_eq!(cmds.len(), 2);
    assert!(cmds[1]["delete"]["table"]["name"] == TABLE);
}

#[test]
fn networks_are_isolated_and_closed_to_the_host() {
    let st = FirewallState {
        networks: vec![
            net("cb-a", "10.1.0.0/24", "10.1.0.1"),
            net("cb-b", "10.2.0.0/24", "10.2.0.1"),
        ],
        ..Default::default()
    };
    let b = ruleset(&st);
    let fwd = rules_of(&b, "forward");
    // same bridge in and out is accepted, everything else into a bridge needs dnat.
    assert!(fwd.iter().any(|r| r.contains("\"iifname\"")
        && r.contains("\"oifname\"")
        && r.contains("cb-a")
        && r.contains("accept")));
    let drop_into_b = fwd
        .iter()
        .position(|r| r.contains("oifname") && r.contains("cb-b") && r.contains("drop"))
        .unwrap();
    let dnat_into_b = fwd
        .iter()
        .position(|r| r.contains("oifname") && r.contains("cb-b") && r.contains("dnat"))
        .unwrap();
    assert!(dnat_into_b < drop_into_b);
    // Egress accepts come after every network's drop, or one network could enter another.
    let first_egress = fwd
        .iter()
        .position(|r| r.contains("iifname") && !r.contains("oifname") && r.contains("accept"))
        .unwrap();
    assert!(first_egress > drop_into_b);
    let input = rules_of(&b, "input");
    assert!(input
        .iter()
        .any(|r| r.contains("cb-a") && r.contains("53") && r.contains("10.1.0.1")));
    assert!(input.last().unwrap().contains("drop"));
    let post = rules_of(&b, "postrouting");
    assert!(post
        .iter()
        .any(|r| r.contains("10.1.0.0") && r.contains("masquerade") && r.contains("!=")));
}

#[test]
fn ports_and_stops_become_rules() {
    let st = FirewallState {
        networks: vec![net("cb-a", "10.1.0.0/24", "10.1.0.1")],
        ports: vec![PortRule {
            host_ip: None,
            host_port: 8080,
            protocol: Protocol::Udp,
            target: "10.1.0.2".parse().unwrap(),
            target_port: 80,
        }],
        stopped: vec!["10.1.0.3".parse().unwrap()],
    };
    let b = ruleset(&st);
    for chain in ["prerouting", "output"] {
        let r = rules_of(&b, chain);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].contains("\"udp\"")
                && r[0].contains("8080")
                && r[0].contains("10.1.0.2")
                && r[0].contains("fib")
        );
    }
    let fwd = rules_of(&b, "forward");
    assert!(fwd[0].contains("10.1.0.3") && fwd[0].contains("drop"));
}

#[test]
fn recording_firewall_records_and_fails_on_demand() {
    let fw = RecordingFirewall::default();
    fw.apply(&json!({"nftables": []})).unwrap();
    assert_eq!(fw.batches.lock().unwrap().len(), 1);
    *fw.fail_with.lock().unwrap() = Some("boom".into());
    assert!(fw
        .apply(&json!({}))
        .unwrap_err()
        .to_string()
        .contains("boom"));
}
