//! Every endpoint against bad input: the routes come from `ROUTES` in src/api/mod.rs and what
//! each takes (path parameters, JSON body and its schema, typed query parameters) from the
//! served OpenAPI document, so a new endpoint is walked without a change here. Each bad request
//! must get a JSON error with the right status and code, naming the field or the resource, and
//! leave the daemon's state exactly as it was.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::net::UnixStream;

use common::{read_answer, Answer, Daemon};
use serde_json::{json, Value};

/// `(method, path)` of every route, read from the daemon's own list.
fn routes() -> Vec<(String, String)> {
    let src = include_str!("../src/api/mod.rs");
    let start = src
        .find("pub const ROUTES")
        .expect("ROUTES in src/api/mod.rs");
    let end = start + src[start..].find("];").expect("the end of ROUTES");
    // Each entry is a tuple whose first two strings are the method and the path, on one line
    // or spread over several.
    let table = &src[start..end];
    let table = &table[table.find("= &[").expect("ROUTES = &[") + 4..];
    let mut out = Vec::new();
    for entry in table.split('(').skip(1) {
        let q: Vec<&str> = entry.split('"').collect();
        if q.len() >= 4 {
            out.push((q[1].to_string(), q[3].to_string()));
        }
    }
    assert!(out.len() > 20, "ROUTES did not parse: {out:?}");
    out
}

/// Follows `$ref`, `oneOf` and `allOf` to the schema that says the type.
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    for k in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = s[k].as_array() {
            if let Some(x) = list.iter().find(|x| x["type"] != "null") {
                return resolve(doc, x);
            }
        }
    }
    s
}

/// The first non-null type of a schema.
fn kind(doc: &Value, s: &Value) -> String {
    let s = resolve(doc, s);
    match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| *t != "null")
            .unwrap_or("object")
            .to_string(),
        _ if s["enum"].is_array() => "string".into(),
        _ => "object".into(),
    }
}

/// A value of the schema's type that is wrong for it.
fn wrong(doc: &Value, s: &Value) -> Value {
    match kind(doc, s).as_str() {
        "string" => json!(12345),
        "integer" | "number" => json!("not-a-number"),
        "boolean" => json!("not-a-boolean"),
        "array" => json!("not-an-array"),
        _ => json!("not-an-object"),
    }
}

/// A plausible value of the schema's type (its first choice for an enumeration).
fn sample(doc: &Value, s: &Value) -> Value {
    if let Some(first) = resolve(doc, s)["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match kind(doc, s).as_str() {
        "string" => json!("probe"),
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "array" => json!(["true"]),
        _ => minimal(doc, s),
    }
}

/// The smallest valid-looking object of a schema: its required properties.
fn minimal(doc: &Value, s: &Value) -> Value {
    let s = resolve(doc, s);
    let mut o = serde_json::Map::new();
    for r in s["required"].as_array().cloned().unwrap_or_default() {
        let r = r.as_str().unwrap();
        o.insert(r.to_string(), sample(doc, &s["properties"][r]));
    }
    Value::Object(o)
}

/// An existing resource of the kind a `{name}` in `path` names.
fn existing(path: &str) -> &'static str {
    match path.split('/').nth(2) {
        Some("tenants") => "default",
        Some("users") => "probe-user",
        _ => "vol-busy",
    }
}

/// A request on a fresh connection with extra header lines.
fn send(d: &Daemon, method: &str, path: &str, body: Option<&str>, headers: &str) -> Answer {
    if headers.is_empty() {
        return d.req(method, path, body);
    }
    let mut s = UnixStream::connect(d.sock()).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_answer(s)
}

/// What must not change: listings, the event count, and the files under the root.
fn state(d: &Daemon) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for p in [
        "/v1/containers?all=true",
        "/v1/volumes",
        "/v1/images",
        "/v1/templates",
        "/v1/tenants",
        "/v1/users",
        "/v1/tokens?all=true",
    ] {
        m.insert(p.to_string(), d.get(p).body);
    }
    m.insert(
        "events".into(),
        d.get("/v1/events?since=0&follow=false")
            .body
            .lines()
            .count()
            .to_string(),
    );
    for dir in ["containers", "volumes", "storage/tmp", "storage/images"] {
        let mut names: Vec<String> = std::fs::read_dir(d.root.join(dir))
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        m.insert(dir.to_string(), names.join(","));
    }
    m
}

/// Method, path, body, status, code, and what the error must name.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    &'static str,
    Option<&'static str>,
);

struct Check<'a> {
    d: &'a Daemon,
    failures: Vec<String>,
    covered: BTreeSet<(String, String)>,
    count: usize,
}

impl Check<'_> {
    /// Sends one bad request and checks the answer; `route` is the route it covers.
    #[allow(clippy::too_many_arguments)]
    fn expect(
        &mut self,
        route: (&str, &str),
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &str,
        status: u16,
        code: &str,
        names: Option<&str>,
    ) {
        self.count += 1;
        self.covered
            .insert((route.0.to_string(), route.1.to_string()));
        let a = send(self.d, method, path, body, headers);
        let what = format!("{method} {path} {body:?}");
        if a.status != status {
            self.failures.push(format!(
                "{what}: status {} (want {status}): {}",
                a.status, a.body
            ));
            return;
        }
        let v: Value = match serde_json::from_str(&a.body) {
            Ok(v) => v,
            Err(_) => {
                self.failures.push(format!("{what}: not JSON: {}", a.body));
                return;
            }
        };
        if v["code"] != code {
            self.failures
                .push(format!("{what}: code {} (want {code})", v["code"]));
        }
        let msg = v["message"].as_str().unwrap_or_default();
        if msg.is_empty() {
            self.failures.push(format!("{what}: no message"));
        }
        if let Some(n) = names {
            let field_ok = v["field"].as_str() == Some(n);
            if !msg.contains(n) && !field_ok {
                self.failures.push(format!(
                    "{what}: the error does not name \"{n}\": {}",
                    a.body
                ));
            }
        }
    }
}

#[test]
fn every_endpoint_refuses_bad_input_and_changes_nothing() {
    let d = Daemon::start();
    let doc: Value = serde_json::from_str(&d.get("/openapi.json").body).unwrap();
    // The resources the requests aim at: a running container with a volume, a created one
    // with another, and those volumes.
    d.run(
        "busy",
        &["sleep", "1000"],
        json!({"volumes": ["vol-busy:/data"]}),
    );
    let a = d.post(
        "/v1/containers",
        &json!({"name": "idle", "rootfs": d.rootfs, "command": ["true"], "volumes": ["vol-idle:/data"]})
            .to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let a = d.post(
        "/v1/users",
        &json!({"name": "probe-user", "role": "operator"}).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let before = state(&d);

    let mut c = Check {
        d: &d,
        failures: Vec::new(),
        covered: BTreeSet::new(),
        count: 0,
    };
    let routes = routes();
    let mut paths: BTreeSet<&str> = BTreeSet::new();
    for (m, p) in &routes {
        paths.insert(p);
        let op = &doc["paths"][p.as_str()][m.as_str()];
        assert!(op.is_object(), "{m} {p} is not in /openapi.json");
        let route = (m.as_str(), p.as_str());
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let has_path_params = p.contains('{');
        let json_schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let json_body = json_schema.is_object();
        let raw_body = op["requestBody"]["content"].is_object() && !json_body;
        let valid_body = json_body.then(|| minimal(&doc, json_schema).to_string());
        let method = m.to_uppercase();
        // Existing resources for body and query checks, absent ones for lookups.
        let real = p
            .replace("{id}", "busy")
            .replace("{snapshot}", "nosnap")
            .replace("{name}", existing(p));

        // An absent resource: 404 naming it (with the upgrade header for a route that only
        // upgrades).
        let upgrade_only =
            op["responses"]["101"].is_object() && !op["responses"]["200"].is_object();
        if has_path_params {
            let absent = p
                .replace("{id}", "nosuch-ctr")
                .replace("{snapshot}", "nosuch-snap")
                .replace("{name}", "nosuch-res");
            let named = if p.contains("{id}") {
                "nosuch-ctr"
            } else {
                "nosuch-res"
            };
            c.expect(
                route,
                &method,
                &absent,
                valid_body.as_deref(),
                if upgrade_only {
                    "Connection: Upgrade, close\r\nUpgrade: condo-exec\r\n"
                } else {
                    ""
                },
                404,
                "not_found",
                Some(named),
            );
        }

        if json_body {
            let schema = resolve(&doc, json_schema);
            // Malformed JSON, JSON of the wrong shape, an empty body.
            for bad in ["{\"name\": ", "[1, 2]", "\"text\"", ""] {
                c.expect(
                    route,
                    &method,
                    &real,
                    Some(bad),
                    "",
                    400,
                    "invalid_json",
                    None,
                );
            }
            // An unknown field, named.
            c.expect(
                route,
                &method,
                &real,
                Some("{\"zz_unknown\": 1}"),
                "",
                400,
                "invalid_json",
                Some("zz_unknown"),
            );
            // Each property with a value of the wrong type, named.
            let props = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            assert!(
                !props.is_empty(),
                "{m} {p}: its body schema has no properties"
            );
            for (name, ps) in props {
                let mut body = minimal(&doc, json_schema);
                body[name.as_str()] = wrong(&doc, &ps);
                c.expect(
                    route,
                    &method,
                    &real,
                    Some(&body.to_string()),
                    "",
                    400,
                    "invalid_json",
                    Some(&name),
                );
            }
        }

        if raw_body {
            // An archive that is not one.
            c.expect(
                route,
                &method,
                &real,
                Some("this is not a tar archive, not even a compressed one"),
                "",
                400,
                "invalid_value",
                Some("body"),
            );
        }

        // Query parameters of a number type with a value that is not a number, and flags
        // (`all`, `follow`…) that are neither true nor false.
        for q in params.iter().filter(|q| q["in"] == "query") {
            let bad = match kind(&doc, &q["schema"]).as_str() {
                "integer" | "number" => "soon",
                "boolean" => "maybe",
                _ => continue,
            };
            let name = q["name"].as_str().unwrap();
            let sep = if real.contains('?') { '&' } else { '?' };
            c.expect(
                route,
                &method,
                &format!("{real}{sep}{name}={bad}"),
                valid_body.as_deref(),
                "",
                400,
                "invalid_value",
                Some(name),
            );
        }

        // A text query parameter of a listing filters it: no value is bad, while a number or
        // a flag can be of the wrong type.
        let takes_input = has_path_params
            || json_body
            || raw_body
            || params.iter().any(|q| {
                q["in"] == "query"
                    && matches!(
                        kind(&doc, &q["schema"]).as_str(),
                        "integer" | "number" | "boolean"
                    )
            });
        if !takes_input {
            c.covered.insert((m.clone(), p.clone()));
        }
    }

    // A method a path does not take: 405 with a JSON error naming the path.
    for p in &paths {
        let real = p
            .replace("{id}", "busy")
            .replace("{snapshot}", "s")
            .replace("{name}", existing(p));
        c.expect(
            ("put", p),
            "PUT",
            &real,
            Some("{}"),
            "",
            405,
            "invalid_value",
            Some(real.as_str()),
        );
    }

    // Values of the right type that are not acceptable, and states that forbid the request.
    let cases: &[Case] = &[
        (
            "POST",
            "/v1/containers",
            Some(r#"{"rootfs": "/", "name": "bad name"}"#),
            400,
            "invalid_value",
            Some("name"),
        ),
        (
            "POST",
            "/v1/containers",
            Some(r#"{"rootfs": "/", "volumes": ["bad name:/x"]}"#),
            400,
            "invalid_value",
            Some("volumes"),
        ),
        (
            "POST",
            "/v1/containers",
            Some(r#"{"rootfs": "/", "volumes": ["v:relative"]}"#),
            400,
            "invalid_value",
            Some("volumes"),
        ),
        (
            "POST",
            "/v1/containers",
            Some(r#"{"image": "nosuch-image:1", "volumes": ["fresh:/x"]}"#),
            400,
            "invalid_value",
            Some("image"),
        ),
        (
            "POST",
            "/v1/containers",
            Some(r#"{"rootfs": "/", "name": "busy", "volumes": ["fresh:/x"]}"#),
            409,
            "conflict",
            Some("busy"),
        ),
        (
            "POST",
            "/v1/volumes",
            Some(r#"{"name": "bad/name"}"#),
            400,
            "invalid_value",
            Some("name"),
        ),
        (
            "POST",
            "/v1/volumes",
            Some(r#"{"name": "vol-busy"}"#),
            409,
            "conflict",
            Some("vol-busy"),
        ),
        (
            "DELETE",
            "/v1/volumes/vol-busy",
            None,
            409,
            "conflict",
            Some("busy"),
        ),
        (
            "DELETE",
            "/v1/volumes/vol-busy?force=true",
            None,
            409,
            "conflict",
            Some("busy"),
        ),
        (
            "DELETE",
            "/v1/volumes/vol-idle",
            None,
            409,
            "conflict",
            Some("idle"),
        ),
        (
            "POST",
            "/v1/images/pull",
            Some(r#"{"reference": "Not A Reference"}"#),
            400,
            "invalid_value",
            Some("reference"),
        ),
        (
            "POST",
            "/v1/images/pull",
            Some(r#"{"reference": "localhost:1/x", "username": "u"}"#),
            400,
            "invalid_value",
            Some("password"),
        ),
        (
            "POST",
            "/v1/containers/busy/start",
            None,
            409,
            "conflict",
            Some("busy"),
        ),
        (
            "DELETE",
            "/v1/containers/busy",
            None,
            409,
            "conflict",
            Some("busy"),
        ),
        (
            "POST",
            "/v1/containers/busy/resume",
            None,
            409,
            "conflict",
            Some("busy"),
        ),
        (
            "POST",
            "/v1/containers/busy/rename",
            Some(r#"{"name": "idle"}"#),
            409,
            "conflict",
            Some("idle"),
        ),
        (
            "POST",
            "/v1/containers/busy/kill?signal=NOPE",
            None,
            400,
            "invalid_value",
            Some("signal"),
        ),
        (
            "POST",
            "/v1/containers/idle/kill",
            None,
            409,
            "conflict",
            Some("idle"),
        ),
        (
            "POST",
            "/v1/containers/idle/pause",
            None,
            409,
            "conflict",
            Some("idle"),
        ),
        (
            "POST",
            "/v1/containers/idle/exec",
            Some(r#"{"command": ["true"]}"#),
            409,
            "conflict",
            None,
        ),
        (
            "GET",
            "/v1/containers/busy/snapshots",
            None,
            409,
            "conflict",
            None,
        ),
        (
            "POST",
            "/v1/templates/build",
            Some("{}"),
            400,
            "invalid_value",
            Some("path"),
        ),
        (
            "GET",
            "/v1/containers/busy/console",
            None,
            400,
            "invalid_value",
            Some("upgrade"),
        ),
    ];
    for (m, p, body, status, code, names) in cases {
        let route = p.split('?').next().unwrap();
        c.expect(
            (&m.to_lowercase(), route),
            m,
            p,
            *body,
            "",
            *status,
            code,
            *names,
        );
    }

    let Check {
        failures,
        covered,
        count,
        ..
    } = c;
    for (m, p) in &routes {
        assert!(
            covered.contains(&(m.clone(), p.clone())),
            "{m} {p} takes input but no bad request reached it"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {count} bad requests were answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let after = state(&d);
    for (k, v) in &before {
        assert_eq!(&after[k], v, "{k} changed under bad requests");
    }
    assert_eq!(d.inspect("busy")["state"], "running");
    eprintln!("{count} bad requests over {} routes", routes.len());
}
