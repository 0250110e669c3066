//! template.toml as a user or a shared template repository writes it: parsed and checked by
//! `Template::parse` against a fixed template folder, then its parameters resolved with
//! their defaults and every run step rendered, the way a build does.
//!
//! Checks: no panic, no hang; sizes that parse do not overflow; every placeholder `render`
//! insists on is one `placeholders` reports (parse checks rendered files with `placeholders`,
//! builds use `render`: finding template_toml-1, fixed by giving both one scan).
#![no_main]

use condo_template::model::Template;
use condo_template::params;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn folder() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join("condo-fuzz-template");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("conf")).unwrap();
        std::fs::write(d.join("page.html"), "<h1>{{ title }}</h1>").unwrap();
        std::fs::write(d.join("conf/app.conf"), "port = {{ port }}\n").unwrap();
        std::fs::write(d.join("blob.bin"), [0xffu8, 0xfe, 0, 1]).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = folder();

    // The placeholder scanner and the renderer must agree on the same text.
    let names = params::placeholders(text);
    let values: BTreeMap<String, String> =
        names.iter().map(|n| (n.clone(), "v".to_string())).collect();
    if let Err(e) = params::render(text, &values) {
        panic!("placeholders() found {names:?} but render() says {e}");
    }
    let _ = params::parse_size(text);

    let Ok(t) = Template::parse(dir, Path::new("template.toml"), text) else {
        return;
    };
    let _ = (t.image_name(), t.build_network());
    let Ok(values) = params::resolve(&t.params, &BTreeMap::new()) else {
        return;
    };
    for step in &t.raw.run {
        let _ = params::render(step.get_ref(), &values);
    }
});
