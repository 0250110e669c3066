//! The OpenAPI document: every endpoint of `condod`, declared once here.
//!
//! The functions below exist only to carry the endpoint declarations; the daemon's handlers live
//! in `condod`, and a test there checks that each of its routes is declared here.
#![allow(dead_code)]

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use crate::*;

/// Adds the bearer-token scheme.
struct TokenScheme;

impl utoipa::Modify for TokenScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Condo API",
        version = "1",
        description = "The HTTP API of condod. On the unix socket a root peer is an admin; \
            elsewhere send `Authorization: Bearer TOKEN`. Errors are `ErrorBody` objects."
    ),
    modifiers(&TokenScheme),
    security(("token" = [])),
    paths(
        health, openapi_doc, system_info, whoami, events,
        list_containers, create_container, inspect_container, delete_container,
        start_container, stop_container, restart_container, kill_container,
        pause_container, resume_container, rename_container, update_container,
        wait_container, container_logs, container_stats, exec_container, attach_container, console_container, rebase_container,
        list_snapshots, create_snapshot, delete_snapshot, rollback_snapshot, clone_snapshot,
        list_images, pull_image, import_image, prune_images, inspect_image, delete_image, export_image,
        list_volumes, create_volume, prune_volumes, inspect_volume, delete_volume, list_templates, build_template, show_template, delete_template,
        list_networks, create_network, inspect_network, delete_network,
        list_tenants, create_tenant, show_tenant, delete_tenant, set_quota,
        list_users, create_user, show_user, delete_user, set_role, list_tokens, create_token, revoke_token,
        audit_log,
    ),
    components(schemas(
        ErrorBody, ErrorCode, Container, ContainerCreate, ContainerState, ContainerRename, Isolation,
        ContainerUpdate, ContainerRebase, Limits, RestartPolicy, RestartKind, ExecCreate, ExecResult, LogLine,
        WaitResult, Stats, Healthcheck, HealthStatus, HealthState, SystemInfo, ContainerCounts, Health, Principal, Role, Tenant, Event, SessionLogin, SessionInfo,
        Image, Template, TemplateParam, TemplateBuild, TemplateBuilt, TemplateBuildEvent, Snapshot, SnapshotCreate,
        SnapshotClone, ImagePull, ImagePhase, ImageProgress, ImageEvent, ImagesPruned, Volume,
        VolumeCreate, VolumesPruned, Quota, Usage, TenantCreate, User, UserCreate, UserRole, Token,
        TokenCreate, TokenCreated, AuditEntry,
        Network, NetworkCreate, NetworkEndpoint, PortMapping, PortProtocol, RateLimits,
        AllowancePolicy, TransferAllowance,
    )),
    tags(
        (name = "system", description = "Daemon health, information and events"),
        (name = "containers", description = "Container lifecycle, logs, exec and stats"),
        (name = "snapshots", description = "Snapshots of containers made from an image or a template"),
        (name = "images", description = "Images: pull, import, list, export, remove, prune"),
        (name = "volumes", description = "Named volumes: data that outlives containers"),
        (name = "templates", description = "Templates: build and list"),
        (name = "networks", description = "Networks: bridges with their subnets, NAT and DNS"),
        (name = "tenancy", description = "Tenants and quotas, users, tokens and the audit log"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of this API version.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as pretty JSON with a final newline (the text of docs/openapi.json).
pub fn openapi_json() -> String {
    let mut s = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[utoipa::path(get, path = "/health", tag = "system", security(()),
    responses((status = 200, description = "The daemon answers", body = Health)))]
fn health() {}

#[utoipa::path(get, path = "/openapi.json", tag = "system", security(()),
    responses((status = 200, description = "This document")))]
fn openapi_doc() {}

#[utoipa::path(get, path = "/v1/system/info", tag = "system",
    responses((status = 200, body = SystemInfo), (status = 401, body = ErrorBody)))]
fn system_info() {}

#[utoipa::path(get, path = "/v1/whoami", tag = "system",
    responses((status = 200, body = Principal), (status = 401, body = ErrorBody)))]
fn whoami() {}

#[utoipa::path(get, path = "/v1/events", tag = "system",
    params(
        ("since" = Option<i64>, Query, description = "Send events after this sequence number first"),
        ("follow" = Option<bool>, Query, description = "Keep the stream open for new events (default true)"),
    ),
    responses((status = 200, description = "One Event per line (application/x-ndjson)", body = Event),
        (status = 401, body = ErrorBody)))]
fn events() {}

#[utoipa::path(get, path = "/v1/containers", tag = "containers",
    params(("all" = Option<bool>, Query, description = "Include containers that do not run")),
    responses((status = 200, body = [Container]), (status = 401, body = ErrorBody)))]
fn list_containers() {}

#[utoipa::path(post, path = "/v1/containers", tag = "containers", request_body = ContainerCreate,
    responses((status = 201, body = Container), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn create_container() {}

#[utoipa::path(get, path = "/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = Container), (status = 404, body = ErrorBody)))]
fn inspect_container() {}

#[utoipa::path(delete, path = "/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("force" = Option<bool>, Query, description = "Kill it first when it runs")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn delete_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/start", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = Container), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn start_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/stop", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("timeout" = Option<u64>, Query, description = "Seconds before SIGKILL (default: the container's)"),
        ("signal" = Option<String>, Query, description = "First signal (default: the container's)")),
    responses((status = 200, body = Container), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn stop_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/restart", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("timeout" = Option<u64>, Query, description = "Seconds before SIGKILL")),
    responses((status = 200, body = Container), (status = 404, body = ErrorBody)))]
fn restart_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/kill", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("signal" = Option<String>, Query, description = "Signal name or number (default SIGKILL)")),
    responses((status = 200, body = Container), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn kill_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/pause", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = Container), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn pause_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/resume", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = Container), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn resume_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/rename", tag = "containers", request_body = ContainerRename,
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = Container), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn rename_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/update", tag = "containers", request_body = ContainerUpdate,
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = Container), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
fn update_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/wait", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, description = "Sent once the container has stopped", body = WaitResult),
        (status = 404, body = ErrorBody)))]
fn wait_container() {}

#[utoipa::path(get, path = "/v1/containers/{id}/logs", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("tail" = Option<u64>, Query, description = "Only the last N lines"),
        ("since" = Option<String>, Query, description = "Only lines at or after this RFC 3339 time"),
        ("follow" = Option<bool>, Query, description = "Keep sending new lines until the container stops")),
    responses((status = 200, description = "One LogLine per line (application/x-ndjson)", body = LogLine),
        (status = 404, body = ErrorBody)))]
fn container_logs() {}

#[utoipa::path(get, path = "/v1/containers/{id}/stats", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("stream" = Option<bool>, Query, description = "Send a sample every second (one JSON object per line)")),
    responses((status = 200, body = Stats), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn container_stats() {}

#[utoipa::path(post, path = "/v1/containers/{id}/exec", tag = "containers", request_body = ExecCreate,
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, description = "The process ended", body = ExecResult),
        (status = 101, description = "With `Upgrade: condo-exec`: the connection carries the \
            process's terminal (or stdin, and stdout+stderr) as raw bytes"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
fn exec_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/attach", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses(
        (status = 101, description = "With `Upgrade: condo-exec`: the connection carries the container's \
            terminal in exec frames; the exit frame follows once the container has stopped"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No terminal, or not running", body = ErrorBody)))]
fn attach_container() {}

#[utoipa::path(get, path = "/v1/containers/{id}/console", tag = "containers",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("csrf" = Option<String>, Query, description = "The session's CSRF token, when a browser \
            authenticates with the dashboard's session cookie")),
    responses(
        (status = 101, description = "A WebSocket for an interactive exec: the client's first \
            message is an `ExecCreate` as JSON text (`tty` is implied); then binary messages carry \
            exec frames both ways. A refused request gets one text message, an `ErrorBody`, and \
            the socket closes"),
        (status = 400, description = "Not a WebSocket request", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
fn console_container() {}

#[utoipa::path(get, path = "/v1/containers/{id}/snapshots", tag = "snapshots",
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, body = [Snapshot]), (status = 404, body = ErrorBody),
        (status = 409, description = "The container runs on a host directory", body = ErrorBody)))]
fn list_snapshots() {}

#[utoipa::path(post, path = "/v1/containers/{id}/snapshots", tag = "snapshots", request_body = SnapshotCreate,
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 201, body = Snapshot), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The container runs, or the name is taken", body = ErrorBody)))]
fn create_snapshot() {}

#[utoipa::path(delete, path = "/v1/containers/{id}/snapshots/{snapshot}", tag = "snapshots",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
fn delete_snapshot() {}

#[utoipa::path(post, path = "/v1/containers/{id}/snapshots/{snapshot}/rollback", tag = "snapshots",
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 200, description = "The container's root filesystem is the snapshot's again", body = Container),
        (status = 404, body = ErrorBody), (status = 409, description = "The container runs", body = ErrorBody)))]
fn rollback_snapshot() {}

#[utoipa::path(post, path = "/v1/containers/{id}/rebase", tag = "templates",
    request_body = ContainerRebase,
    params(("id" = String, Path, description = "Container id, id prefix or name")),
    responses((status = 200, description = "The container runs the new build, its volumes kept; \
            a snapshot `rebase-VERSION-TIME` of its state before stays", body = Container),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not made from a template, already on that build, or the \
            new build failed its healthcheck (the container is back on its old build)", body = ErrorBody)))]
fn rebase_container() {}

#[utoipa::path(post, path = "/v1/containers/{id}/snapshots/{snapshot}/clone", tag = "snapshots",
    request_body = SnapshotClone,
    params(("id" = String, Path, description = "Container id, id prefix or name"),
        ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 201, description = "A new container on a copy of the snapshot", body = Container),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn clone_snapshot() {}

#[utoipa::path(get, path = "/v1/images", tag = "images",
    responses((status = 200, description = "The shared images and the caller's tenant's own (every \
        tenant's for an admin)", body = [Image]), (status = 401, body = ErrorBody)))]
fn list_images() {}

#[utoipa::path(post, path = "/v1/images/pull", tag = "images", request_body = ImagePull,
    params(("stream" = Option<bool>, Query, description = "Answer at once with one ImageEvent per line \
        (application/x-ndjson) as the pull goes; the images or the error come last")),
    responses((status = 201, description = "The image pulled: shared when an admin pulls, else \
        the tenant's own", body = [Image]),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 502, description = "The registry failed or refused", body = ErrorBody)))]
fn pull_image() {}

#[utoipa::path(post, path = "/v1/images/import", tag = "images",
    params(("name" = Option<String>, Query, description = "Name for images the archive does not name"),
        ("stream" = Option<bool>, Query, description = "Once the body is received, answer with one \
            ImageEvent per line (application/x-ndjson) as the import goes; the images or the error come last")),
    request_body(content = String, content_type = "application/x-tar",
        description = "An OCI image layout or a docker-archive (`docker save`) as a tar, optionally compressed"),
    responses((status = 201, description = "The images the archive held: shared when an admin \
        imports, else the tenant's own", body = [Image]),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Past the tenant's disk quota", body = ErrorBody)))]
fn import_image() {}

#[utoipa::path(post, path = "/v1/images/prune", tag = "images",
    params(("all" = Option<bool>, Query, description = "Also remove images no container was made from")),
    responses((status = 200, body = ImagesPruned), (status = 403, body = ErrorBody)))]
fn prune_images() {}

#[utoipa::path(get, path = "/v1/images/{name}", tag = "images",
    params(("name" = String, Path, description = "Image name (percent-encoded): the tenant's own \
            first, then a shared one"),
        ("tenant" = Option<String>, Query, description = "An admin: that tenant's own image")),
    responses((status = 200, body = Image), (status = 404, body = ErrorBody)))]
fn inspect_image() {}

#[utoipa::path(delete, path = "/v1/images/{name}", tag = "images",
    params(("name" = String, Path, description = "Image name (percent-encoded)"),
        ("tenant" = Option<String>, Query, description = "An admin: that tenant's own image")),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "A shared image, and the caller is not an admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A container was made from it", body = ErrorBody)))]
fn delete_image() {}

#[utoipa::path(get, path = "/v1/images/{name}/export", tag = "images",
    params(("name" = String, Path, description = "Image name (percent-encoded)"),
        ("tenant" = Option<String>, Query, description = "An admin: that tenant's own image")),
    responses((status = 200, description = "The image as an OCI image layout tar (application/x-tar)"),
        (status = 404, body = ErrorBody)))]
fn export_image() {}

#[utoipa::path(get, path = "/v1/volumes", tag = "volumes",
    responses((status = 200, body = [Volume]), (status = 401, body = ErrorBody)))]
fn list_volumes() {}

#[utoipa::path(post, path = "/v1/volumes", tag = "volumes", request_body = VolumeCreate,
    responses((status = 201, body = Volume), (status = 400, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)))]
fn create_volume() {}

#[utoipa::path(post, path = "/v1/volumes/prune", tag = "volumes",
    responses((status = 200, description = "Volumes no container mounts are removed", body = VolumesPruned)))]
fn prune_volumes() {}

#[utoipa::path(get, path = "/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "The volume, its size and its users", body = Volume),
        (status = 404, body = ErrorBody)))]
fn inspect_volume() {}

#[utoipa::path(delete, path = "/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path, description = "Volume name"),
        ("force" = Option<bool>, Query, description = "Remove it even when stopped containers mount it")),
    responses((status = 204, description = "Removed with its data"), (status = 404, body = ErrorBody),
        (status = 409, description = "Containers mount it", body = ErrorBody)))]
fn delete_volume() {}

#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    responses((status = 200, body = [Template]), (status = 401, body = ErrorBody)))]
fn list_templates() {}

#[utoipa::path(post, path = "/v1/templates/build", tag = "templates", request_body = TemplateBuild,
    params(("stream" = Option<bool>, Query, description = "Answer at once with one TemplateBuildEvent \
        per line (application/x-ndjson) as the build goes; the result or the error comes last")),
    responses((status = 201, body = TemplateBuilt), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
fn build_template() {}

#[utoipa::path(get, path = "/v1/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "`name` (the newest build) or `name:version`")),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody)))]
fn show_template() {}

#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "`name` (the newest build) or `name:version`")),
    responses((status = 204, description = "Removed with its image; instances keep their files"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
fn delete_template() {}

#[utoipa::path(get, path = "/v1/networks", tag = "networks",
    responses((status = 200, body = [Network]), (status = 401, body = ErrorBody)))]
fn list_networks() {}

#[utoipa::path(post, path = "/v1/networks", tag = "networks", request_body = NetworkCreate,
    responses((status = 201, body = Network), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)))]
fn create_network() {}

#[utoipa::path(get, path = "/v1/networks/{name}", tag = "networks",
    params(("name" = String, Path, description = "Network name")),
    responses((status = 200, body = Network), (status = 404, body = ErrorBody)))]
fn inspect_network() {}

#[utoipa::path(delete, path = "/v1/networks/{name}", tag = "networks",
    params(("name" = String, Path, description = "Network name")),
    responses((status = 204, description = "Removed with its bridge, rules and DNS server"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Containers still use it", body = ErrorBody)))]
fn delete_network() {}
#[utoipa::path(get, path = "/v1/tenants", tag = "tenancy",
    responses((status = 200, description = "Every tenant for an admin, else the caller's own", body = [Tenant]),
        (status = 401, body = ErrorBody)))]
fn list_tenants() {}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenancy", request_body = TenantCreate,
    responses((status = 201, body = Tenant), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn create_tenant() {}

#[utoipa::path(get, path = "/v1/tenants/{name}", tag = "tenancy",
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, description = "The tenant, its quota and its usage", body = Tenant),
        (status = 404, body = ErrorBody)))]
fn show_tenant() {}

#[utoipa::path(delete, path = "/v1/tenants/{name}", tag = "tenancy",
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 204, description = "Removed with its users and tokens"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "It still has containers, or it is the default tenant", body = ErrorBody)))]
fn delete_tenant() {}

#[utoipa::path(post, path = "/v1/tenants/{name}/quota", tag = "tenancy", request_body = Quota,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, description = "The tenant with its new quota (the body replaces the old one)", body = Tenant),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
fn set_quota() {}

#[utoipa::path(get, path = "/v1/users", tag = "tenancy",
    params(("tenant" = Option<String>, Query, description = "Only this tenant's users (an admin sees every tenant's)")),
    responses((status = 200, body = [User]), (status = 401, body = ErrorBody)))]
fn list_users() {}

#[utoipa::path(post, path = "/v1/users", tag = "tenancy", request_body = UserCreate,
    responses((status = 201, body = User), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn create_user() {}

#[utoipa::path(get, path = "/v1/users/{name}", tag = "tenancy",
    params(("name" = String, Path, description = "User name"),
        ("tenant" = Option<String>, Query, description = "Its tenant (an admin names it when several tenants have the name)")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
fn show_user() {}

#[utoipa::path(delete, path = "/v1/users/{name}", tag = "tenancy",
    params(("name" = String, Path, description = "User name"),
        ("tenant" = Option<String>, Query, description = "Its tenant (an admin names it when several tenants have the name)")),
    responses((status = 204, description = "Removed with its tokens"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
fn delete_user() {}

#[utoipa::path(post, path = "/v1/users/{name}/role", tag = "tenancy", request_body = UserRole,
    params(("name" = String, Path, description = "User name"),
        ("tenant" = Option<String>, Query, description = "Its tenant (an admin names it when several tenants have the name)")),
    responses((status = 200, description = "The user with its new role; its tokens act with it at once", body = User),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
fn set_role() {}

#[utoipa::path(get, path = "/v1/tokens", tag = "tenancy",
    params(("user" = Option<String>, Query, description = "Only this user's tokens"),
        ("all" = Option<bool>, Query, description = "Include revoked and expired tokens")),
    responses((status = 200, description = "An admin sees every token, a tenant owner its tenant's, \
        anyone else its own", body = [Token]), (status = 401, body = ErrorBody)))]
fn list_tokens() {}

#[utoipa::path(post, path = "/v1/tokens", tag = "tenancy", request_body = TokenCreate,
    responses((status = 201, description = "The token and its secret, shown this once", body = TokenCreated),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
fn create_token() {}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tenancy",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked: it no longer works"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
fn revoke_token() {}

#[utoipa::path(get, path = "/v1/audit", tag = "tenancy",
    params(("tenant" = Option<String>, Query, description = "Only this tenant's entries (a tenant owner sees only its own)"),
        ("principal" = Option<String>, Query, description = "Only requests by this principal"),
        ("resource" = Option<String>, Query, description = "Only resources whose path starts with this"),
        ("method" = Option<String>, Query, description = "Only this HTTP method"),
        ("result" = Option<String>, Query, description = "ok, denied or error"),
        ("since" = Option<String>, Query, description = "Only entries at or after this time (RFC 3339 or seconds since the epoch)"),
        ("until" = Option<String>, Query, description = "Only entries before this time"),
        ("after" = Option<i64>, Query, description = "Only entries after this sequence number"),
        ("limit" = Option<u64>, Query, description = "At most this many, newest last (default 1000, at most 10000)")),
    responses((status = 200, body = [AuditEntry]), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
fn audit_log() {}
