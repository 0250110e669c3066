//! A failing step keeps nothing: no layer, no cache entry, no image record, no mount.

mod common;

use common::Env;

#[test]
fn a_failing_step_leaves_nothing_behind() {
    let env = Env::new();
    let dir = env.tmp.path().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("template.toml"),
        "name = \"broken\"\nversion = \"1\"\nfrom = \"host-busybox\"\nrun = [\"echo half > /half\", \"echo boom; exit 3\"]\n",
    )
    .unwrap();
    let before = env.snap.walk().unwrap().len();
    let e = env
        .builder
        .build(&dir, &mut |_| {})
        .unwrap_err()
        .to_string();
    eprintln!("{e}");
    assert!(
        e.contains("broken: step run[1] echo boom; exit 3: exited with status 3"),
        "{e}"
    );
    assert!(e.contains("boom"), "{e}");
    assert!(env.images.get("broken:1").is_err(), "no image record");
    // The two good steps before it are committed layers; nothing else is.
    let snaps = env.snap.walk().unwrap();
    assert_eq!(snaps.len(), before + 2, "{snaps:?}");
    assert!(
        snaps.iter().all(|s| s.name.starts_with("layer/")),
        "{snaps:?}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.tmp.path().to_str().unwrap()));
    let work = std::fs::read_dir(env.tmp.path().join("builder/work"))
        .unwrap()
        .count();
    assert_eq!(work, 0);

    // The missing base and an unknown `from` template are named.
    std::fs::write(
        dir.join("template.toml"),
        "name = \"broken\"\nversion = \"1\"\nfrom = \"example.org/none:1\"\n",
    )
    .unwrap();
    let e = env
        .builder
        .build(&dir, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("from \"example.org/none:1\"") && e.contains("not found"),
        "{e}"
    );
    std::fs::write(
        dir.join("template.toml"),
        "name = \"broken\"\nversion = \"1\"\nfrom = \"template:nothing\"\n",
    )
    .unwrap();
    let e = env
        .builder
        .build(&dir, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no template \"nothing\""), "{e}");
}
