//! Ephemeral containers (`condo run --rm`): a writable layer that is never flushed, no restart
//! policy, and a delete that answers before the files are gone yet removes them all.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The mount line of the container's own root, as it sees it.
const ROOT_MOUNT: &str = "grep ' / / ' /proc/self/mountinfo";

#[test]
fn ephemeral_containers_are_thrown_away_whole() {
    let d = Daemon::start();
    let tar = d.image_tar("bb:1");
    let (code, _, err) = d.condo(&["import", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "import: {err}");

    // Thrown away at its end: never restarted.
    let a = d.post(
        "/v1/containers",
        r#"{"image":"bb:1","command":["true"],"ephemeral":true,"restart":{"policy":"always"}}"#,
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.json()["field"], "restart");
    assert!(a.body.contains("ephemeral"), "{}", a.body);
    let (_, out, _) = d.condo(&["ps", "-a", "-q"]);
    assert_eq!(out, "", "a refused create left a container");

    // `run --rm`: output and exit code as ever, on a volatile overlay.
    let cmd = format!("{ROOT_MOUNT}; echo done; exit 3");
    let (code, out, err) = d.condo(&["run", "--rm", "--pull", "never", "bb:1", "sh", "-c", &cmd]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("overlay") && out.contains("volatile"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
    let (_, out, _) = d.condo(&["ps", "-a", "-q"]);
    assert_eq!(out, "", "--rm left the container");
    // Its files go after the answer: soon, and all of them.
    let dirs = |sub: &str| -> Vec<String> {
        std::fs::read_dir(d.root.join(sub))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dirs("containers").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(dirs("containers"), Vec::<String>::new());
    assert_eq!(dirs("runtime"), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(d.root.to_str().unwrap()),
        "a mount is left under the daemon's root"
    );

    // A container that is kept is flushed as usual.
    let (code, _, err) = d.condo(&[
        "run", "--name", "kept", "--pull", "never", "bb:1", "sh", "-c", ROOT_MOUNT,
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, logs, _) = d.condo(&["logs", "kept"]);
    assert!(
        logs.contains("overlay") && !logs.contains("volatile"),
        "{logs}"
    );
    assert!(d.inspect("kept")["config"].get("ephemeral").is_none());
    let (code, _, err) = d.condo(&["rm", "kept"]);
    assert_eq!(code, 0, "{err}");
}
