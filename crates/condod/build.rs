//! Puts the dashboard's third-party files (the xterm.js terminal) where `web.rs` includes them.
//!
//! They come from npm, pinned by web/package-lock.json, like crates come from crates.io; when
//! web/node_modules is missing, this installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: &[(&str, &str)] = &[
    ("@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("@xterm/xterm/css/xterm.css", "xterm.css"),
    ("@xterm/addon-fit/lib/addon-fit.js", "addon-fit.js"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../../web");
    let modules = web.join("node_modules");
    println!(
        "cargo:rerun-if-changed={}",
        web.join("package-lock.json").display()
    );
    println!("cargo:rerun-if-changed={}", modules.display());
    if FILES.iter().any(|(src, _)| !modules.join(src).exists()) {
        install(&web);
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    for (src, dst) in FILES {
        let from = modules.join(src);
        if let Err(e) = std::fs::copy(&from, out.join(dst)) {
            panic!("cannot copy {}: {e}", from.display());
        }
    }
}

fn install(web: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`npm ci` in {} failed ({s}): the dashboard needs its terminal files", web.display()),
        Err(e) => panic!("cannot run npm ({e}): install Node.js and npm (apt install npm), or run `npm ci` in {}", web.display()),
    }
}
