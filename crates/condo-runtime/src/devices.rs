//! The device cgroup rules every container gets besides its own.

use condo_cgroups::resources::DeviceRule;
use condo_cgroups::Resources;

use crate::spec::Device;

fn rule(kind: &str, major: i64, minor: i64) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind: Some(kind.into()),
        major: Some(major),
        minor: if minor < 0 { None } else { Some(minor) },
        access: Some("rwm".into()),
    }
}

/// Appends allow rules for the default devices, terminals, and the config's own devices
/// after the config's rules (later rules win).
pub fn with_defaults(mut r: Resources, devices: &[Device]) -> Resources {
    let mut rules = r.devices.take().unwrap_or_default();
    if rules.is_empty() {
        // Nothing said: start from "deny all", as every runtime does.
        rules.push(DeviceRule {
            allow: false,
            kind: Some("a".into()),
            major: None,
            minor: None,
            access: Some("rwm".into()),
        });
    }
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule("c", maj, min));
    }
    rules.push(rule("c", 136, -1));
    for d in devices {
        if d.kind == "c" || d.kind == "b" {
            rules.push(rule(&d.kind, d.major, d.minor));
        }
    }
    r.devices = Some(rules);
    r
}
