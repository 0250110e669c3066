//! The HTTP API: one module per resource; handlers parse, check and call the supervisor.

pub mod audit;
mod console;
mod containers;
mod exec;
mod images;
mod networks;
mod rebase;
mod snapshots;
mod streams;
mod system;
mod templates;
mod tenants;
mod tokens;
mod users;
mod volumes;

pub use containers::valid_name;

use std::sync::Arc;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::auth::Access::{self, Admin, Operate, Owner, Public, Read};
use crate::App;

/// Every route with the access it needs (see [`Access`]): the authorisation layer reads this
/// table, and each route must be declared in `condo_api::openapi` (a test checks both).
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("get", "/health", Public),
    ("get", "/openapi.json", Public),
    ("get", "/v1/system/info", Read),
    ("get", "/v1/whoami", Read),
    ("get", "/v1/events", Read),
    ("get", "/v1/containers", Read),
    ("post", "/v1/containers", Operate),
    ("get", "/v1/containers/{id}", Read),
    ("delete", "/v1/containers/{id}", Operate),
    ("post", "/v1/containers/{id}/start", Operate),
    ("post", "/v1/containers/{id}/stop", Operate),
    ("post", "/v1/containers/{id}/rebase", Operate),
    ("post", "/v1/containers/{id}/restart", Operate),
    ("post", "/v1/containers/{id}/kill", Operate),
    ("post", "/v1/containers/{id}/pause", Operate),
    ("post", "/v1/containers/{id}/resume", Operate),
    ("post", "/v1/containers/{id}/rename", Operate),
    ("post", "/v1/containers/{id}/update", Operate),
    ("post", "/v1/containers/{id}/wait", Read),
    ("get", "/v1/containers/{id}/logs", Read),
    ("get", "/v1/containers/{id}/stats", Read),
    ("post", "/v1/containers/{id}/exec", Operate),
    ("post", "/v1/containers/{id}/attach", Operate),
    ("get", "/v1/containers/{id}/console", Operate),
    ("get", "/v1/containers/{id}/snapshots", Read),
    ("post", "/v1/containers/{id}/snapshots", Operate),
    (
        "delete",
        "/v1/containers/{id}/snapshots/{snapshot}",
        Operate,
    ),
    (
        "post",
        "/v1/containers/{id}/snapshots/{snapshot}/rollback",
        Operate,
    ),
    (
        "post",
        "/v1/containers/{id}/snapshots/{snapshot}/clone",
        Operate,
    ),
    ("get", "/v1/images", Read),
    ("post", "/v1/images/pull", Operate),
    ("post", "/v1/images/import", Operate),
    ("post", "/v1/images/prune", Admin),
    ("get", "/v1/images/{name}", Read),
    ("delete", "/v1/images/{name}", Operate),
    ("get", "/v1/images/{name}/export", Read),
    ("get", "/v1/volumes", Read),
    ("post", "/v1/volumes", Operate),
    ("post", "/v1/volumes/prune", Operate),
    ("get", "/v1/volumes/{name}", Read),
    ("delete", "/v1/volumes/{name}", Operate),
    ("get", "/v1/templates", Read),
    ("post", "/v1/templates/build", Admin),
    ("get", "/v1/templates/{name}", Read),
    ("delete", "/v1/templates/{name}", Admin),
    ("get", "/v1/tenants", Read),
    ("post", "/v1/tenants", Admin),
    ("get", "/v1/tenants/{name}", Read),
    ("delete", "/v1/tenants/{name}", Admin),
    ("post", "/v1/tenants/{name}/quota", Admin),
    ("get", "/v1/users", Read),
    ("post", "/v1/users", Owner),
    ("get", "/v1/users/{name}", Read),
    ("delete", "/v1/users/{name}", Owner),
    ("post", "/v1/users/{name}/role", Owner),
    ("get", "/v1/tokens", Read),
    ("post", "/v1/tokens", Owner),
    ("delete", "/v1/tokens/{id}", Owner),
    ("get", "/v1/audit", Owner),
    ("get", "/v1/networks", Read),
    ("post", "/v1/networks", Owner),
    ("get", "/v1/networks/{name}", Read),
    ("delete", "/v1/networks/{name}", Owner),
];

/// The router.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(system::health))
        .route("/openapi.json", get(system::openapi))
        .route("/v1/system/info", get(system::info))
        .route("/v1/whoami", get(system::whoami))
        .route("/v1/events", get(streams::events))
        .route(
            "/v1/containers",
            get(containers::list).post(containers::create),
        )
        .route(
            "/v1/containers/{id}",
            get(containers::inspect).delete(containers::delete),
        )
        .route("/v1/containers/{id}/start", post(containers::start))
        .route("/v1/containers/{id}/stop", post(containers::stop))
        .route("/v1/containers/{id}/rebase", post(rebase::rebase))
        .route("/v1/containers/{id}/restart", post(containers::restart))
        .route("/v1/containers/{id}/kill", post(containers::kill))
        .route("/v1/containers/{id}/pause", post(containers::pause))
        .route("/v1/containers/{id}/resume", post(containers::resume))
        .route("/v1/containers/{id}/rename", post(containers::rename))
        .route("/v1/containers/{id}/update", post(containers::update))
        .route("/v1/containers/{id}/wait", post(containers::wait))
        .route("/v1/containers/{id}/logs", get(streams::logs))
        .route("/v1/containers/{id}/stats", get(streams::stats))
        .route("/v1/containers/{id}/exec", post(exec::exec))
        .route("/v1/containers/{id}/attach", post(exec::attach))
        .route("/v1/containers/{id}/console", get(console::console))
        .route(
            "/v1/containers/{id}/snapshots",
            get(snapshots::list).post(snapshots::create),
        )
        .route(
            "/v1/containers/{id}/snapshots/{snapshot}",
            delete(snapshots::delete),
        )
        .route(
            "/v1/containers/{id}/snapshots/{snapshot}/rollback",
            post(snapshots::rollback),
        )
        .route(
            "/v1/containers/{id}/snapshots/{snapshot}/clone",
            post(snapshots::clone),
        )
        .route("/v1/images", get(images::list))
        .route("/v1/images/pull", post(images::pull))
        .route("/v1/images/import", post(images::import))
        .route("/v1/images/prune", post(images::prune))
        .route(
            "/v1/images/{name}",
            get(images::inspect).delete(images::delete),
        )
        .route("/v1/images/{name}/export", get(images::export))
        .route("/v1/volumes", get(volumes::list).post(volumes::create))
        .route("/v1/volumes/prune", post(volumes::prune))
        .route(
            "/v1/volumes/{name}",
            get(volumes::inspect).delete(volumes::delete),
        )
        .route("/v1/templates", get(templates::list))
        .route("/v1/templates/build", post(templates::build))
        .route(
            "/v1/templates/{name}",
            get(templates::show).delete(templates::delete),
        )
        .route("/v1/networks", get(networks::list).post(networks::create))
        .route(
            "/v1/networks/{name}",
            get(networks::inspect).delete(networks::delete),
        )
        .route("/v1/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/v1/tenants/{name}",
            get(tenants::show).delete(tenants::delete),
        )
        .route("/v1/tenants/{name}/quota", post(tenants::set_quota))
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{name}", get(users::show).delete(users::delete))
        .route("/v1/users/{name}/role", post(users::set_role))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/v1/audit", get(audit::list))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::auth::layer,
        ))
        .merge(crate::web::router())
        .with_state(app)
}

/// A query flag: absent is false; bare (`?follow`), `1`, `true` and `yes` are true; `0`,
/// `false` and `no` are false; anything else is an error naming the parameter (a typo must not
/// quietly mean false).
pub fn flag(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<bool, crate::error::ApiError> {
    flag_or(q, name, false)
}

/// [`flag`] with the value an absent parameter takes.
pub fn flag_or(
    q: &std::collections::HashMap<String, String>,
    name: &str,
    absent: bool,
) -> Result<bool, crate::error::ApiError> {
    match q.get(name).map(String::as_str) {
        None => Ok(absent),
        Some("0" | "false" | "no") => Ok(false),
        Some("" | "1" | "true" | "yes") => Ok(true),
        Some(other) => Err(crate::error::ApiError::invalid(
            name,
            format!("query parameter {name}=\"{other}\": use true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::ROUTES;

    #[test]
    fn every_route_is_documented() {
        let doc = condo_api::openapi();
        for (m, p, _) in ROUTES {
            let item = doc
                .paths
                .paths
                .get(*p)
                .unwrap_or_else(|| panic!("{p} is not in the OpenAPI document"));
            let op = match *m {
                "get" => &item.get,
                "post" => &item.post,
                "delete" => &item.delete,
                _ => panic!("method {m}"),
            };
            assert!(op.is_some(), "{m} {p} is not in the OpenAPI document");
        }
        let routes: std::collections::HashSet<&str> = ROUTES.iter().map(|r| r.1).collect();
        assert_eq!(
            doc.paths.paths.len(),
            routes.len(),
            "the document declares paths the daemon lacks"
        );
    }

    #[test]
    fn docs_openapi_json_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let want = condo_api::openapi_json();
        if std::env::var_os("CONDO_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(have == want, "docs/openapi.json differs from the served document: run `CONDO_BLESS=1 cargo test -p condod docs_openapi`");
    }
}
