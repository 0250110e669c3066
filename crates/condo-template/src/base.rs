//! The bases a template can start from without an image: the host's static busybox, and a
//! Debian suite installed with debootstrap from the host's apt mirror.

use crate::fsroot;
use std::io;
use std::path::Path;
use std::process::Command;

/// The Debian mirror the host's apt uses (first non-security `deb` source), if any.
pub fn host_mirror() -> Option<String> {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push((false, t));
    }
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let deb822 = p.extension().is_some_and(|x| x == "sources");
            let list = p.extension().is_some_and(|x| x == "list");
            if deb822 || list {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    texts.push((deb822, t));
                }
            }
        }
    }
    texts.iter().find_map(|(deb822, t)| {
        if *deb822 {
            mirror_from_deb822(t)
        } else {
            mirror_from_list(t)
        }
    })
}

fn is_debian_mirror(uri: &str, suite: &str) -> bool {
    uri.starts_with("http")
        && uri.contains("debian")
        && !uri.contains("security")
        && !suite.contains("security")
}

/// The first Debian mirror of a one-line-style sources.list.
pub fn mirror_from_list(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace().filter(|w| !w.starts_with('['));
        if w.next()? != "deb" {
            return None;
        }
        let uri = w.next()?;
        let suite = w.next()?;
        is_debian_mirror(uri, suite).then(|| uri.trim_end_matches('/').to_string())
    })
}

/// The first Debian mirror of a deb822 `.sources` file.
pub fn mirror_from_deb822(text: &str) -> Option<String> {
    for para in text.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let enabled = field("Enabled").is_none_or(|v| v != "no");
        let types = field("Types").unwrap_or_default();
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        let suite = suites.split_whitespace().next().unwrap_or("");
        if let Some(uri) = uris.split_whitespace().next() {
            if enabled
                && types.split_whitespace().any(|t| t == "deb")
                && is_debian_mirror(uri, suite)
            {
                return Some(uri.trim_end_matches('/').to_string());
            }
        }
    }
    None
}

/// The host's Debian suite (`VERSION_CODENAME` of /etc/os-release).
pub fn host_suite() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// The debootstrap command that installs `suite` (minbase) into `target` from `mirror`.
pub fn debootstrap(suite: &str, target: &Path, mirror: &str) -> Command {
    let mut c = Command::new("debootstrap");
    c.arg("--variant=minbase")
        .arg(suite)
        .arg(target)
        .arg(mirror);
    c.env("LC_ALL", "C");
    c
}

/// Fills `root` with a minimal tree around the static busybox at `busybox`: the binary, a
/// symlink for each of its applets, and the usual directories, passwd and group.
pub fn host_busybox(root: &Path, busybox: &Path) -> io::Result<()> {
    let data = std::fs::read(busybox)?;
    for (d, mode) in [
        ("/bin", 0o755),
        ("/sbin", 0o755),
        ("/usr/bin", 0o755),
        ("/usr/sbin", 0o755),
        ("/etc", 0o755),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/run", 0o755),
        ("/var/lib", 0o755),
        ("/var/log", 0o755),
        ("/root", 0o700),
        ("/tmp", 0o1777),
    ] {
        let fd = fsroot::make_dirs(root, d)?;
        rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(mode))?;
    }
    fsroot::write_file(root, "/bin/busybox", &data, 0o755, (0, 0))?;
    let out = Command::new(busybox).arg("--list-full").output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{} --list-full failed",
            busybox.display()
        )));
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        fsroot::symlink(root, &format!("/{applet}"), "/bin/busybox")?;
    }
    fsroot::write_file(
        root,
        "/etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
        (0, 0),
    )?;
    fsroot::write_file(
        root,
        "/etc/group",
        b"root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
        0o644,
        (0, 0),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_debian_mirror() {
        let deb822 = "Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.example.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror_from_deb822(deb822).as_deref(),
            Some("http://deb.example.org/debian")
        );
        let list = "# comment\ndeb [arch=amd64] http://ftp.example.org/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_list(list).as_deref(),
            Some("http://ftp.example.org/debian")
        );
        assert_eq!(
            mirror_from_list("deb https://packages.cloud.google.com/apt cloud-sdk main"),
            None
        );
    }
}
