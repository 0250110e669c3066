//! The monitor's command line (this test also makes cargo build the binary for the manager's
//! end-to-end tests).

#[test]
fn bad_usage_exits_2() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_condo-monitor"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_condo-monitor"))
        .args(["run", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option --bogus"));
}
