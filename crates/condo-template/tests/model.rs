//! Bad template files are refused with the file, the line and the field.

use condo_template::model::{Base, Template};
use std::path::Path;

fn parse(text: &str) -> Result<Template, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.html"), "<h1>{{ title }}</h1>").unwrap();
    Template::parse(dir.path(), Path::new("t/template.toml"), text).map_err(|e| e.to_string())
}

const OK: &str = r#"
name = "site"
version = "2"
from = "debian:bookworm"
packages = ["nginx"]

[parameters.title]
type = "string"
required = true

[[files]]
src = "page.html"
dest = "/var/www/html/index.html"
render = true
"#;

#[test]
fn a_good_template_loads() {
    let t = parse(OK).unwrap();
    assert_eq!(t.base, Base::Debian("bookworm".into()));
    assert_eq!(t.image_name(), "site:2");
    assert!(t.build_network());
    assert!(t.params["title"].required);
}

#[test]
fn unknown_keys_name_the_line() {
    let e = parse(&format!(
        "{OK}\n[services.web]\ncommand = \"nginx\"\nrestrat = \"always\"\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("t/template.toml") && e.contains("line 18") && e.contains("restrat"),
        "{e}"
    );
    let e = parse(&OK.replace("packages", "pakages")).unwrap_err();
    assert!(e.contains("line 5") && e.contains("pakages"), "{e}");
}

#[test]
fn bad_values_name_the_field_and_line() {
    let e = parse(&OK.replace("required = true", "default = 3")).unwrap_err();
    assert!(
        e.contains("t/template.toml:")
            && e.contains(": parameters.title: default is a integer, not a string"),
        "{e}"
    );
    let e = parse(
        &OK.replace("type = \"string\"", "type = \"int\"\ndefault = \"x\"")
            .replace("required = true\n", ""),
    )
    .unwrap_err();
    assert!(
        e.contains("parameters.title") && e.contains("not an integer"),
        "{e}"
    );
    let e = parse(&OK.replace("required = true", "required = true\ndefault = \"a\"")).unwrap_err();
    assert!(
        e.contains("required parameter cannot have a default"),
        "{e}"
    );
    let e = parse(&OK.replace("page.html", "missing.html")).unwrap_err();
    assert!(
        e.contains(":11: files[0].src") && e.contains("missing.html"),
        "{e}"
    );
    let e = parse(&OK.replace("/var/www/html/index.html", "var/www")).unwrap_err();
    assert!(e.contains("files[0].dest") && e.contains("absolute"), "{e}");
    let e = parse(&OK.replace("[parameters.title]", "[parameters.heading]")).unwrap_err();
    assert!(
        e.contains("{{ title }}") && e.contains("not a parameter"),
        "{e}"
    );
    let e = parse(&OK.replace("debian:bookworm", "scratch")).unwrap_err();
    assert!(
        e.contains(":4: packages") && e.contains("no package manager"),
        "{e}"
    );
    let e = parse(&OK.replace("debian:bookworm", "")).unwrap_err();
    assert!(e.contains(":4: from: is empty"), "{e}");
    let e = parse(&format!("{OK}\n[resources]\nmemory = \"lots\"\n")).unwrap_err();
    assert!(e.contains(":17: resources.memory"), "{e}");
}

#[test]
fn bases_parse() {
    assert_eq!(Base::parse("scratch").unwrap(), Base::Scratch);
    assert_eq!(Base::parse("host-busybox").unwrap(), Base::HostBusybox);
    assert_eq!(
        Base::parse("template:debian").unwrap(),
        Base::Template("debian".into())
    );
    assert_eq!(
        Base::parse("docker.io/library/alpine:3").unwrap(),
        Base::Image("docker.io/library/alpine:3".into())
    );
    assert_eq!(
        Base::parse("image:debian:12").unwrap(),
        Base::Image("debian:12".into())
    );
    assert!(Base::parse("debian:../x").is_err());
}
