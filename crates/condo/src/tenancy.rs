//! `condo tenant`, `condo user`, `condo token` and `condo audit`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use condo_api::{
    AuditEntry, Principal, Quota, Role, Tenant, TenantCreate, Token, TokenCreate, TokenCreated,
    User, UserCreate, UserRole,
};

use crate::client::{enc, Client};
use crate::output::{ago, human, parse_size, table};
use crate::Format;

/// Limits of a tenant, as flags.
#[derive(Args, Debug, Clone, Default)]
pub struct QuotaArgs {
    /// Most containers.
    #[arg(long)]
    pub containers: Option<u64>,
    /// Most memory, summed over the containers' limits (bytes, or with k, m, g, t).
    #[arg(long)]
    pub memory: Option<String>,
    /// Most CPUs, summed over the containers' limits.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Most disk (bytes, or with k, m, g, t).
    #[arg(long)]
    pub disk: Option<String>,
    /// Most networks.
    #[arg(long)]
    pub networks: Option<u64>,
    /// Bandwidth of each container, bits per second (or with k, m, g: powers of 1000).
    #[arg(long)]
    pub bandwidth: Option<String>,
    /// Network traffic a month (bytes, or with k, m, g, t).
    #[arg(long)]
    pub traffic: Option<String>,
}

/// The names `--unset` takes.
const QUOTA_NAMES: &[&str] = &[
    "containers",
    "memory",
    "cpus",
    "disk",
    "networks",
    "bandwidth",
    "traffic",
];

/// Parses a rate in bits per second: a number with k, m or g (powers of 1000).
fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("bit")
        .or_else(|| t.strip_suffix("bps"))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        Some('g') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok((n * mult) as u64),
        _ => bail!("\"{s}\" is not a rate (like 100m for 100 Mbit/s)"),
    }
}

/// Parses a duration: seconds, or a number with s, m, h or d.
fn parse_duration(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1),
        Some('m') => (&t[..t.len() - 1], 60),
        Some('h') => (&t[..t.len() - 1], 3600),
        Some('d') => (&t[..t.len() - 1], 86400),
        _ => (t, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.saturating_mul(mult)),
        _ => bail!("\"{s}\" is not a duration (like 3600, 12h or 30d)"),
    }
}

impl QuotaArgs {
    /// Lays the given flags over `q`.
    fn apply(&self, q: &mut Quota) -> Result<()> {
        let size = |v: &Option<String>| -> Result<Option<u64>> {
            v.as_deref()
                .map(parse_size)
                .transpose()
                .map_err(anyhow::Error::msg)
        };
        if self.containers.is_some() {
            q.containers = self.containers;
        }
        if let Some(m) = size(&self.memory)? {
            q.memory = Some(m);
        }
        if self.cpus.is_some() {
            q.cpus = self.cpus;
        }
        if let Some(d) = size(&self.disk)? {
            q.disk = Some(d);
        }
        if self.networks.is_some() {
            q.networks = self.networks;
        }
        if let Some(b) = &self.bandwidth {
            q.bandwidth = Some(parse_rate(b)?);
        }
        if let Some(t) = size(&self.traffic)? {
            q.monthly_traffic = Some(t);
        }
        Ok(())
    }
}

/// `condo tenant …`.
#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// List tenants (an admin sees all, anyone else its own) with their usage.
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Make a tenant (admin).
    Create {
        /// Its name.
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// A tenant, its quota and usage, as JSON.
    Show {
        /// The tenant.
        name: String,
    },
    /// Change a tenant's quota (admin): the flags given change, the others stay.
    Quota {
        /// The tenant.
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
        /// Lift a limit: containers, memory, cpus, disk, networks, bandwidth or traffic
        /// (repeatable).
        #[arg(long)]
        unset: Vec<String>,
    },
    /// What a tenant uses against its quota (default: your own tenant).
    Usage {
        /// The tenant.
        name: Option<String>,
    },
    /// Remove tenants without containers, with their users and tokens (admin).
    Rm {
        /// The tenants.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `condo user …`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// List users (of your tenant; an admin sees every tenant's).
    Ls {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Make a user: read-only, operator, tenant-owner or admin.
    Create {
        /// Its name.
        name: String,
        /// Its role.
        #[arg(long)]
        role: String,
        /// Its tenant (default: yours; only an admin names another).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Give a user another role; its tokens act with it at once.
    Role {
        /// The user.
        name: String,
        /// The role: read-only, operator, tenant-owner or admin.
        role: String,
        /// Its tenant (for an admin, when several tenants have the name).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove users; their tokens stop working.
    Rm {
        /// Their tenant (for an admin, when several tenants have the name).
        #[arg(long)]
        tenant: Option<String>,
        /// The users.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `condo token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// List tokens (a tenant owner sees its tenant's, anyone else its own).
    Ls {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Include revoked and expired tokens.
        #[arg(short = 'a', long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Make a token for a user; prints its secret, which is shown only this once.
    Create {
        /// The user it acts as.
        user: String,
        /// What it is for.
        #[arg(long)]
        name: Option<String>,
        /// Life: seconds, or with s, m, h, d (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        /// The user's tenant (admin, when several tenants have the name).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke tokens: they stop working at once.
    Revoke {
        /// Token ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `condo audit`: filters of the audit log.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only this tenant's entries.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only requests by this principal.
    #[arg(long)]
    pub principal: Option<String>,
    /// Only resources whose path starts with this (`/v1/containers/ID`).
    #[arg(long)]
    pub resource: Option<String>,
    /// Only this HTTP method.
    #[arg(long)]
    pub method: Option<String>,
    /// Only ok, denied or error.
    #[arg(long)]
    pub result: Option<String>,
    /// Only entries since a time (RFC 3339, or seconds since the epoch).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries before a time.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many (the newest).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<i32> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(0)
}

fn of(used: String, max: Option<String>) -> String {
    format!("{used} / {}", max.unwrap_or_else(|| "-".into()))
}

/// `condo tenant …`.
pub fn tenant(c: &Client, cmd: TenantCommand) -> Result<i32> {
    match cmd {
        TenantCommand::Ls { output } => {
            let list: Vec<Tenant> = c.json("GET", "/v1/tenants", None::<&()>)?;
            if output == Format::Json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    let (q, u) = (&t.quota, &t.usage);
                    vec![
                        t.name.clone(),
                        of(
                            u.containers.to_string(),
                            q.containers.map(|v| v.to_string()),
                        ),
                        of(human(u.memory), q.memory.map(human)),
                        of(format!("{:.2}", u.cpus), q.cpus.map(|v| format!("{v:.2}"))),
                        ago(&t.created_at),
                    ]
                })
                .collect();
            table(&["NAME", "CONTAINERS", "MEMORY", "CPUS", "CREATED"], &rows);
            Ok(0)
        }
        TenantCommand::Create { name, quota } => {
            let mut q = Quota::default();
            quota.apply(&mut q)?;
            let t: Tenant = c.json(
                "POST",
                "/v1/tenants",
                Some(&TenantCreate { name, quota: q }),
            )?;
            outln!("{}", t.name);
            Ok(0)
        }
        TenantCommand::Show { name } => {
            let t: Tenant = c.json("GET", &format!("/v1/tenants/{}", enc(&name)), None::<&()>)?;
            print_json(&t)
        }
        TenantCommand::Quota { name, quota, unset } => {
            let path = format!("/v1/tenants/{}", enc(&name));
            let t: Tenant = c.json("GET", &path, None::<&()>)?;
            let mut q = t.quota;
            quota.apply(&mut q)?;
            for u in &unset {
                match u.as_str() {
                    "containers" => q.containers = None,
                    "memory" => q.memory = None,
                    "cpus" => q.cpus = None,
                    "disk" => q.disk = None,
                    "networks" => q.networks = None,
                    "bandwidth" => q.bandwidth = None,
                    "traffic" => q.monthly_traffic = None,
                    other => bail!(
                        "--unset {other}: not a quota (use {})",
                        QUOTA_NAMES.join(", ")
                    ),
                }
            }
            let t: Tenant = c.json("POST", &format!("{path}/quota"), Some(&q))?;
            outln!("{}", t.name);
            Ok(0)
        }
        TenantCommand::Usage { name } => {
            let name = match name {
                Some(n) => n,
                None => {
                    let me: Principal = c.json("GET", "/v1/whoami", None::<&()>)?;
                    me.tenant
                }
            };
            let t: Tenant = c.json("GET", &format!("/v1/tenants/{}", enc(&name)), None::<&()>)?;
            let (q, u) = (&t.quota, &t.usage);
            let n = |v: Option<u64>| v.map(|v| v.to_string());
            let rows = vec![
                vec![
                    "containers".into(),
                    of(u.containers.to_string(), n(q.containers)),
                ],
                vec!["memory".into(), of(human(u.memory), q.memory.map(human))],
                vec![
                    "cpus".into(),
                    of(format!("{:.2}", u.cpus), q.cpus.map(|v| format!("{v:.2}"))),
                ],
                vec!["networks".into(), of(u.networks.to_string(), n(q.networks))],
                vec!["disk".into(), of(human(u.disk), q.disk.map(human))],
                vec!["images".into(), of(u.images.to_string(), None)],
                vec![
                    "bandwidth".into(),
                    of("-".into(), q.bandwidth.map(|b| format!("{b} bit/s"))),
                ],
                vec![
                    "monthly traffic".into(),
                    of(human(u.traffic), q.monthly_traffic.map(human)),
                ],
            ];
            outln!("tenant {}", t.name);
            table(&["RESOURCE", "USED / QUOTA"], &rows);
            Ok(0)
        }
        TenantCommand::Rm { names } => {
            for n in names {
                c.empty("DELETE", &format!("/v1/tenants/{}", enc(&n)))?;
                outln!("{n}");
            }
            Ok(0)
        }
    }
}

fn role_arg(role: &str) -> Result<Role> {
    match Role::parse(role) {
        Some(r) => Ok(r),
        None => bail!("role \"{role}\": use read-only, operator, tenant-owner or admin"),
    }
}

/// `condo user …`.
pub fn user(c: &Client, cmd: UserCommand) -> Result<i32> {
    match cmd {
        UserCommand::Ls { tenant, output } => {
            let q = tenant
                .map(|t| format!("?tenant={}", enc(&t)))
                .unwrap_or_default();
            let list: Vec<User> = c.json("GET", &format!("/v1/users{q}"), None::<&()>)?;
            if output == Format::Json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|u| {
                    vec![
                        u.name.clone(),
                        u.tenant.clone(),
                        u.role.to_string(),
                        ago(&u.created_at),
                    ]
                })
                .collect();
            table(&["NAME", "TENANT", "ROLE", "CREATED"], &rows);
            Ok(0)
        }
        UserCommand::Role { name, role, tenant } => {
            let role = role_arg(&role)?;
            let q = tenant
                .map(|t| format!("?tenant={}", enc(&t)))
                .unwrap_or_default();
            let u: User = c.json(
                "POST",
                &format!("/v1/users/{}/role{q}", enc(&name)),
                Some(&UserRole { role }),
            )?;
            outln!("{} ({}, tenant {})", u.name, u.role, u.tenant);
            Ok(0)
        }
        UserCommand::Create { name, role, tenant } => {
            let role = role_arg(&role)?;
            let u: User = c.json(
                "POST",
                "/v1/users",
                Some(&UserCreate { name, tenant, role }),
            )?;
            outln!("{} ({}, tenant {})", u.name, u.role, u.tenant);
            Ok(0)
        }
        UserCommand::Rm { tenant, names } => {
            let q = tenant
                .map(|t| format!("?tenant={}", enc(&t)))
                .unwrap_or_default();
            for n in names {
                c.empty("DELETE", &format!("/v1/users/{}{q}", enc(&n)))?;
                outln!("{n}");
            }
            Ok(0)
        }
    }
}

/// `condo token …`.
pub fn token(c: &Client, cmd: TokenCommand) -> Result<i32> {
    match cmd {
        TokenCommand::Ls { user, all, output } => {
            let mut q = Vec::new();
            if let Some(u) = user {
                q.push(format!("user={}", enc(&u)));
            }
            if all {
                q.push("all=true".into());
            }
            let path = if q.is_empty() {
                "/v1/tokens".to_string()
            } else {
                format!("/v1/tokens?{}", q.join("&"))
            };
            let list: Vec<Token> = c.json("GET", &path, None::<&()>)?;
            if output == Format::Json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    let state = match (&t.revoked_at, &t.expires_at) {
                        (Some(_), _) => "revoked".to_string(),
                        (None, Some(e)) => format!("expires {e}"),
                        (None, None) => "no expiry".to_string(),
                    };
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.user.clone().unwrap_or_else(|| "-".into()),
                        t.tenant.clone(),
                        t.role.to_string(),
                        ago(&t.created_at),
                        state,
                    ]
                })
                .collect();
            table(
                &["ID", "NAME", "USER", "TENANT", "ROLE", "CREATED", "STATE"],
                &rows,
            );
            Ok(0)
        }
        TokenCommand::Create {
            user,
            name,
            expires,
            tenant,
        } => {
            let expires_in = expires.as_deref().map(parse_duration).transpose()?;
            let made: TokenCreated = c.json(
                "POST",
                "/v1/tokens",
                Some(&TokenCreate {
                    user,
                    tenant,
                    name,
                    expires_in,
                }),
            )?;
            let t = &made.token;
            eprintln!(
                "token {} for {} ({}, tenant {}); its secret is shown only now:",
                t.id,
                t.user.as_deref().unwrap_or("-"),
                t.role,
                t.tenant
            );
            outln!("{}", made.secret);
            Ok(0)
        }
        TokenCommand::Revoke { ids } => {
            for id in ids {
                c.empty("DELETE", &format!("/v1/tokens/{}", enc(&id)))?;
                outln!("{id}");
            }
            Ok(0)
        }
    }
}

/// `condo audit`.
pub fn audit(c: &Client, a: AuditArgs) -> Result<i32> {
    let mut q = Vec::new();
    let pairs = [
        ("tenant", a.tenant),
        ("principal", a.principal),
        ("resource", a.resource),
        ("method", a.method),
        ("result", a.result),
        ("since", a.since),
        ("until", a.until),
        ("limit", a.limit.map(|l| l.to_string())),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc(&v)));
        }
    }
    let path = if q.is_empty() {
        "/v1/audit".to_string()
    } else {
        format!("/v1/audit?{}", q.join("&"))
    };
    let list: Vec<AuditEntry> = c.json("GET", &path, None::<&()>)?;
    if a.output == Format::Json {
        return print_json(&list);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.time.chars().take(19).collect(),
                e.principal.clone(),
                e.tenant.clone(),
                format!("{} {}", e.method, e.resource),
                format!("{} {}", e.status, e.result),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "TIME",
            "PRINCIPAL",
            "TENANT",
            "REQUEST",
            "RESULT",
            "MESSAGE",
        ],
        &rows,
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations() {
        assert_eq!(parse_rate("100m").unwrap(), 100_000_000);
        assert_eq!(parse_rate("1.5gbit").unwrap(), 1_500_000_000);
        assert!(parse_rate("fast").is_err());
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86400);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1w").is_err());
    }

    #[test]
    fn flags_lay_over_a_quota() {
        let mut q = Quota {
            containers: Some(3),
            disk: Some(1),
            ..Default::default()
        };
        let a = QuotaArgs {
            memory: Some("1g".into()),
            traffic: Some("1t".into()),
            ..Default::default()
        };
        a.apply(&mut q).unwrap();
        assert_eq!(q.containers, Some(3));
        assert_eq!(q.memory, Some(1 << 30));
        assert_eq!(q.monthly_traffic, Some(1 << 40));
        assert_eq!(q.disk, Some(1));
    }
}
