//! DNS messages as the per-network resolver receives them from containers (queries) and from
//! upstream servers (answers).
//!
//! Checks: no panic, no hang; a query that parses can be answered, and that answer parses
//! back with the same rcode and addresses; a query written for a parsed name parses back to
//! the same name.
#![no_main]

use condo_net::dns::message::{self, parse_answer_addrs, parse_query, write_answer, write_query};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let _ = parse_answer_addrs(data);

    let Ok(q) = parse_query(data) else {
        return;
    };
    let addrs: [IpAddr; 2] = ["10.88.0.2".parse().unwrap(), "fd00::2".parse().unwrap()];
    for (rcode, list) in [
        (message::RCODE_NOERROR, &addrs[..]),
        (message::RCODE_NXDOMAIN, &[][..]),
    ] {
        let a = write_answer(&q, rcode, list, 5);
        let (rc, got) = parse_answer_addrs(&a).expect("our own answer parses");
        assert_eq!(rc, rcode);
        assert_eq!(got, list, "answer addresses change across write and parse");
        assert_eq!(&a[..2], &q.id.to_be_bytes());
    }

    // Forwarding path: a name we read, written as a query, reads back the same when it
    // is made of plain ASCII labels (lossy UTF-8 may lengthen others past the limits).
    if q.name.is_ascii() && q.name.split('.').all(|l| !l.is_empty() && l.len() <= 63) {
        let w = write_query(q.id, &q.name, q.qtype);
        let back = parse_query(&w).expect("our own query parses");
        assert_eq!((back.id, back.qtype), (q.id, q.qtype));
        assert_eq!(back.name, q.name.to_ascii_lowercase());
    }
});
