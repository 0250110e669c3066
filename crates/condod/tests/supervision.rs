//! Restart policies beyond the basics in api.rs: `no` stays down, `unless-stopped` restarts an
//! exit but never a stop, and automatic restarts back off exponentially. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{json, Value};

/// Nanoseconds since the epoch of an RFC 3339 UTC time (`2026-11-24T23:55:01.123456789Z`).
fn nanos(t: &str) -> i128 {
    let (date, time) = t.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // Days since 1970-01-01 of the civil date (proleptic Gregorian, 400-year eras).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2];
    let frac: i128 = format!("{frac:0<9}")[..9].parse().unwrap();
    secs as i128 * 1_000_000_000 + frac
}

/// The container's events as (action, time in ns).
fn events_of(d: &Daemon, id: &str) -> Vec<(String, i128)> {
    d.get("/v1/events?since=0&follow=false")
        .body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["id"] == id)
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                nanos(e["time"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn policies_and_backoff() {
    let d = Daemon::start();
    let never = d.run("never", &["sh", "-c", "exit 1"], json!({}));
    let unless = d.run(
        "unless",
        &["sh", "-c", "sleep 0.3; exit 0"],
        json!({"restart": {"policy": "unless-stopped"}}),
    );
    let crashy = d.run(
        "crashy",
        &["sh", "-c", "exit 1"],
        json!({"restart": {"policy": "always"}}),
    );
    // `unless-stopped` brings back a container that ended by itself, even with code 0.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = d.inspect(&unless);
        if v["restart_count"].as_u64().unwrap() >= 1 && v["state"] == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unless-stopped never restarted: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A stop through the API is final for it.
    let v = d
        .post(&format!("/v1/containers/{unless}/stop?timeout=1"), "")
        .json();
    assert_eq!(v["state"], "stopped", "{v}");
    // Let `crashy` fail six times: the waits grow 100, 200, 400, 800, 1600 ms.
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.inspect(&crashy)["restart_count"].as_u64().unwrap() < 5 {
        assert!(Instant::now() < deadline, "crashy: {}", d.inspect(&crashy));
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = d
        .post(&format!("/v1/containers/{crashy}/stop?timeout=1"), "")
        .json();
    assert_eq!(v["state"], "stopped", "{v}");
    let ev = events_of(&d, &crashy);
    let gaps: Vec<i128> = ev
        .windows(2)
        .filter(|w| w[0].0 == "die" && w[1].0 == "restart")
        .map(|w| (w[1].1 - w[0].1) / 1_000_000)
        .collect();
    assert!(gaps.len() >= 5, "{ev:?}");
    for (k, g) in gaps.iter().take(5).enumerate() {
        let nominal = 100i128 << k;
        assert!(
            *g >= nominal * 9 / 10,
            "restart {} came after {g} ms, want about {nominal} ms: {gaps:?}",
            k + 1
        );
    }
    assert!(gaps[4] > gaps[0] * 8, "no backoff: {gaps:?}");
    // And `no` left its container alone all this while.
    let v = d.inspect(&never);
    assert_eq!(
        (
            v["state"].clone(),
            v["restart_count"].clone(),
            v["exit_code"].clone()
        ),
        (json!("stopped"), json!(0), json!(1))
    );
    assert_eq!(d.inspect(&unless)["state"], "stopped");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.inspect(&crashy)["state"], "stopped");
}
