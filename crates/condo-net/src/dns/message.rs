//! Just enough of the DNS wire format (RFC 1035) to read a query and write an answer.

use std::net::IpAddr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Response code: no error.
pub const RCODE_NOERROR: u8 = 0;
/// Response code: the query could not be read.
pub const RCODE_FORMERR: u8 = 1;
/// Response code: the server failed (upstream unreachable).
pub const RCODE_SERVFAIL: u8 = 2;
/// Response code: no such name.
pub const RCODE_NXDOMAIN: u8 = 3;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    /// The message ends before a field it announces.
    #[error("dns message truncated at byte {0}")]
    Truncated(usize),
    /// A name label is malformed (compression in a question, label too long).
    #[error("dns name invalid at byte {0}")]
    BadName(usize),
    /// The message holds no question.
    #[error("dns message has no question")]
    NoQuestion,
}

/// The first question of a query and the header fields needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The message id.
    pub id: u16,
    /// The header flags of the query.
    pub flags: u16,
    /// The name asked for, lowercase, without the final dot.
    pub name: String,
    /// The record type asked for.
    pub qtype: u16,
    /// The class asked for.
    pub qclass: u16,
    /// The raw question section (name, type, class), echoed in answers.
    question: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, DnsError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(DnsError::Truncated(at))
}

/// Reads the header and first question of a query.
pub fn parse_query(b: &[u8]) -> Result<Query, DnsError> {
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    if u16_at(b, 4)? == 0 {
        return Err(DnsError::NoQuestion);
    }
    let mut at = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *b.get(at).ok_or(DnsError::Truncated(at))? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return Err(DnsError::BadName(at));
        }
        let label = b.get(at + 1..at + 1 + len).ok_or(DnsError::Truncated(at))?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += 1 + len;
        if at > 12 + 255 {
            return Err(DnsError::BadName(at));
        }
    }
    let qtype = u16_at(b, at)?;
    let qclass = u16_at(b, at + 2)?;
    Ok(Query {
        id,
        flags,
        name: labels.join("."),
        qtype,
        qclass,
        question: b[12..at + 4].to_vec(),
    })
}

/// Writes an authoritative answer to `q` with `rcode` and the given addresses.
pub fn write_answer(q: &Query, rcode: u8, addrs: &[IpAddr], ttl: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + addrs.len() * 28);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR, opcode copied, AA, RD copied, RA.
    let flags = 0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080;
    out.extend_from_slice(&(flags | u16::from(rcode & 0x0f)).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&q.question);
    for a in addrs {
        out.extend_from_slice(&[0xc0, 0x0c]);
        let (t, data): (u16, Vec<u8>) = match a {
            IpAddr::V4(v) => (TYPE_A, v.octets().to_vec()),
            IpAddr::V6(v) => (TYPE_AAAA, v.octets().to_vec()),
        };
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// Writes a query for `name` and `qtype` with message id `id` (recursion desired).
pub fn write_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Reads the addresses out of an answer (A and AAAA records; other records are skipped).
pub fn parse_answer_addrs(b: &[u8]) -> Result<(u8, Vec<IpAddr>), DnsError> {
    let rcode = (u16_at(b, 2)? & 0x0f) as u8;
    let qd = u16_at(b, 4)?;
    let an = u16_at(b, 6)?;
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(b, at)? + 4;
    }
    let mut addrs = Vec::new();
    for _ in 0..an {
        at = skip_name(b, at)?;
        let t = u16_at(b, at)?;
        let len = u16_at(b, at + 8)? as usize;
        let data = b
            .get(at + 10..at + 10 + len)
            .ok_or(DnsError::Truncated(at))?;
        match (t, len) {
            (TYPE_A, 4) => addrs.push(IpAddr::from([data[0], data[1], data[2], data[3]])),
            (TYPE_AAAA, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                addrs.push(IpAddr::from(o));
            }
            _ => {}
        }
        at += 10 + len;
    }
    Ok((rcode, addrs))
}

fn skip_name(b: &[u8], mut at: usize) -> Result<usize, DnsError> {
    loop {
        let len = *b.get(at).ok_or(DnsError::Truncated(at))?;
        if len & 0xc0 == 0xc0 {
            return Ok(at + 2);
        }
        if len == 0 {
            return Ok(at + 1);
        }
        at += 1 + len as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_roundtrip() {
        let q = write_query(7, "Web.", TYPE_A);
        let p = parse_query(&q).unwrap();
        assert_eq!((p.id, p.name.as_str(), p.qtype), (7, "web", TYPE_A));
        let a = write_answer(&p, RCODE_NOERROR, &["10.0.0.2".parse().unwrap()], 5);
        let (rc, addrs) = parse_answer_addrs(&a).unwrap();
        assert_eq!(rc, 0);
        assert_eq!(addrs, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(u16_at(&a, 0).unwrap(), 7);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(parse_query(&[0, 1]), Err(DnsError::Truncated(2)));
        let mut q = write_query(1, "a", TYPE_A);
        q[12] = 200;
        assert!(parse_query(&q).is_err());
        q.truncate(14);
        assert!(parse_query(&q).is_err());
        assert!(parse_answer_addrs(&[0; 5]).is_err());
    }
}
