//! The verbs a Docker or Podman user expects, their flags and help, `--output json` on every
//! listing, shell completions, and exit codes (needs root for the daemon).

#[path = "../../condod/tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::{busybox_image, condo_at, condo_with_input, have, Daemon};
use serde_json::Value;

fn condo(args: &[&str]) -> (i32, String, String) {
    condo_at("unix:///nonexistent/condod.sock", args)
}

/// The subcommands `condo ARGS --help` lists.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut a = args.to_vec();
    a.push("--help");
    let (code, out, err) = condo(&a);
    assert_eq!(code, 0, "{args:?} --help: {err}");
    let Some(start) = out.find("Commands:") else {
        return Vec::new();
    };
    out[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_expected_verb_and_flag_is_there_with_help() {
    // Verb (as words) and the flags its help must show.
    let expected: &[(&str, &[&str])] = &[
        (
            "run",
            &[
                "-d",
                "-i",
                "-t",
                "--name",
                "-e",
                "-m",
                "--cpus",
                "--pids-limit",
                "-v",
                "--restart",
                "--rm",
                "--pull",
            ],
        ),
        ("create", &["--name", "-v", "--restart"]),
        ("ps", &["-a", "-q", "--output"]),
        ("start", &[]),
        ("attach", &[]),
        ("stop", &["-t", "-s"]),
        ("restart", &["-t"]),
        ("kill", &["-s"]),
        ("pause", &[]),
        ("resume", &[]),
        ("rm", &["-f"]),
        ("rename", &[]),
        ("update", &["-m", "--cpus", "--pids-limit", "--restart"]),
        ("exec", &["-i", "-t", "-e", "-w", "-u"]),
        ("logs", &["-f", "--tail", "--since", "-t"]),
        ("stats", &["--no-stream", "--output"]),
        ("inspect", &[]),
        ("wait", &[]),
        ("events", &["--since"]),
        ("images", &["-q", "--output"]),
        ("pull", &[]),
        ("import", &["--name"]),
        ("export", &["-o"]),
        ("save", &["-o"]),
        ("rmi", &[]),
        ("image pull", &[]),
        ("image import", &[]),
        ("image ls", &["--output"]),
        ("image inspect", &[]),
        ("image export", &["-o"]),
        ("image rm", &[]),
        ("image prune", &["-a", "-f"]),
        ("volume create", &["-l"]),
        ("volume ls", &["-q", "--output"]),
        ("volume inspect", &[]),
        ("volume rm", &["-f"]),
        ("volume prune", &["-f"]),
        ("snapshot create", &[]),
        ("snapshot ls", &["--output"]),
        ("snapshot rollback", &[]),
        ("snapshot clone", &[]),
        ("snapshot rm", &[]),
        ("template build", &[]),
        ("template ls", &["--output"]),
        ("templates", &["--output"]),
        ("system info", &["--output"]),
        ("completion", &[]),
        ("version", &["--output"]),
    ];
    for (verb, flags) in expected {
        let mut args: Vec<&str> = verb.split(' ').collect();
        args.push("--help");
        let (code, out, err) = condo(&args);
        assert_eq!(code, 0, "condo {verb} --help: {err}");
        // Every verb says what it does in a sentence, and every flag what it is for.
        let about = out.lines().next().unwrap_or_default();
        assert!(about.len() > 10, "condo {verb}: no description: {out}");
        for f in *flags {
            let shown = out.lines().any(|l| {
                l.trim_start()
                    .split([',', ' '])
                    .take_while(|w| w.starts_with('-'))
                    .any(|w| w == *f)
            });
            assert!(shown, "condo {verb} --help does not show {f}:\n{out}");
        }
    }
    // Every listing offers --output json: any verb named like one, at any depth.
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&args) {
            let mut p = path.clone();
            p.push(sub.clone());
            if ["ls", "ps", "images", "templates", "stats", "info"].contains(&sub.as_str()) {
                let mut a: Vec<&str> = p.iter().map(String::as_str).collect();
                a.push("--help");
                let (_, out, _) = condo(&a);
                assert!(
                    out.contains("--output"),
                    "condo {} has no --output",
                    p.join(" ")
                );
                seen += 1;
            }
            queue.push(p);
        }
    }
    assert!(seen >= 9, "only {seen} listings found");
    // Bad usage exits 2 with a message; a daemon that is not there, 1 with a hint.
    let (code, _, err) = condo(&["run", "--restart"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = condo(&["nosuchverb"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = condo(&["ps"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach condod"), "{err}");
}

#[test]
fn the_guide_covers_every_verb() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/guide.md"))
            .unwrap();
    let mut missing = Vec::new();
    for v in subcommands(&[]) {
        let subs = subcommands(&[v.as_str()]);
        if subs.is_empty() {
            let shown = [format!("condo {v}"), format!("`{v}`"), format!("`{v} ")]
                .iter()
                .any(|p| guide.contains(p.as_str()));
            if !shown {
                missing.push(v.clone());
            }
        }
        for s in subs {
            if !guide.contains(&format!("{v} {s}")) {
                missing.push(format!("{v} {s}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/guide.md does not show: {missing:?}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let (code, out, err) = condo(&["completion", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["condo", "snapshot", "volume", "pids-limit"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
        // The script parses in its shell, when that shell is here.
        if have(check) {
            let f = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(f.path(), &out).unwrap();
            let st = Command::new(check)
                .arg("-n")
                .arg(f.path())
                .status()
                .unwrap();
            assert!(st.success(), "{shell} -n rejects the completion script");
        }
    }
    let (code, _, _) = condo(&["completion", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn every_listing_prints_json_and_errors_have_exit_codes() {
    let d = Daemon::start();
    let tar = d.tmp.path().join("bb.tar");
    busybox_image(&tar, "bb:1");
    let (code, _, err) = d.condo(&["import", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&[
        "run", "-d", "--name", "web", "-v", "v1:/v", "bb:1", "sleep", "100",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&["create", "--name", "cold", "bb:1", "true"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&["snapshot", "create", "cold", "s1"]);
    assert_eq!(code, 0, "{err}");

    for args in [
        vec!["ps", "--output", "json"],
        vec!["ps", "-a", "--output", "json"],
        vec!["images", "--output", "json"],
        vec!["image", "ls", "--output", "json"],
        vec!["templates", "--output", "json"],
        vec!["template", "ls", "--output", "json"],
        vec!["volume", "ls", "--output", "json"],
        vec!["snapshot", "ls", "cold", "--output", "json"],
        vec!["stats", "--no-stream", "--output", "json"],
        vec!["system", "info", "--output", "json"],
        vec!["version", "--output", "json"],
        vec!["inspect", "web"],
        vec!["image", "inspect", "bb:1"],
        vec!["volume", "inspect", "v1"],
    ] {
        let (code, out, err) = d.condo(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {out}"));
        assert!(v.is_array() || v.is_object(), "{args:?}: {out}");
    }
    let (_, out, _) = d.condo(&["ps", "-a", "--output", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, out, _) = d.condo(&["stats", "--no-stream", "--output", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "web", "{out}");

    // Exit codes: 3 for what does not exist, 4 for a state that forbids it.
    for (args, want) in [
        (vec!["start", "nosuch"], 3),
        (vec!["inspect", "nosuch"], 3),
        (vec!["rmi", "nosuch:1"], 3),
        (vec!["save", "nosuch:1", "-o", "/dev/null"], 3),
        (vec!["start", "web"], 4),
        (vec!["rm", "web"], 4),
        (vec!["volume", "rm", "v1"], 4),
        (vec!["snapshot", "create", "web", "s2"], 4),
        (vec!["create", "--name", "web", "bb:1"], 4),
    ] {
        let (code, _, err) = d.condo(&args);
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.starts_with("condo: "), "{args:?}: {err}");
    }
    // The export round trip: save, remove, import, and it runs again.
    let out = d.tmp.path().join("saved.tar");
    let (code, _, err) = d.condo(&["save", "bb:1", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&["rm", "-f", "web", "cold"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&["rmi", "bb:1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out_, err) = d.condo(&["import", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out_.contains("bb:1"), "{out_}");
    let (code, out_, err) = d.condo(&["run", "--rm", "--pull", "never", "bb:1", "echo", "back"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out_.trim(), "back");
}

#[test]
fn run_detached_with_a_terminal_then_attach_and_detach() {
    let d = Daemon::start();
    let r = d.rootfs.display().to_string();
    let (code, out, err) = d.condo(&["run", "-dit", "--name", "term", "--rootfs", &r, "sh"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().len(), 16, "{out}");
    assert_eq!(d.inspect("term")["state"], "running");
    // Ctrl-P Ctrl-Q leaves it running.
    let (code, out) = condo_with_input(
        &d,
        &["attach", "term"],
        &[b"echo hi-$((1+1))\n", b"\x10\x11"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hi-2"), "{out}");
    assert!(out.contains("detached"), "{out}");
    assert_eq!(d.inspect("term")["state"], "running");
    // Its exit ends the attach with its code.
    let (code, out) = condo_with_input(&d, &["attach", "term"], &[b"exit 7\n"]);
    assert_eq!(code, 7, "{out}");
    d.wait_state("term", "stopped", 10);
    // A container without a terminal cannot be attached to.
    let (code, _, err) = d.condo(&[
        "run", "-d", "--name", "plain", "--rootfs", &r, "sleep", "100",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&["attach", "plain"]);
    assert_eq!(code, 4, "{err}");
}
