//! `GET /openapi.json`: the OpenAPI document, built with utoipa from the route table below.
//! Every route the router serves must have a row here; `tests/admin_api.rs` checks that every
//! documented path answers something other than 404/405.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Required,
    ResponseBuilder,
};

use crate::AppState;

/// (method, path, tag, summary, success status)
pub const ROUTES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "get",
        "/api/v1/projects",
        "projects",
        "List projects",
        "200",
    ),
    (
        "post",
        "/api/v1/projects",
        "projects",
        "Create a project (default environments: development, production)",
        "201",
    ),
    (
        "get",
        "/api/v1/projects/{project}",
        "projects",
        "Get a project with its environments",
        "200",
    ),
    (
        "put",
        "/api/v1/projects/{project}",
        "projects",
        "Replace a project's name and description",
        "200",
    ),
    (
        "delete",
        "/api/v1/projects/{project}",
        "projects",
        "Delete a project",
        "204",
    ),
    (
        "get",
        "/api/v1/projects/{project}/environments",
        "environments",
        "List environments",
        "200",
    ),
    (
        "post",
        "/api/v1/projects/{project}/environments",
        "environments",
        "Create an environment",
        "201",
    ),
    (
        "get",
        "/api/v1/projects/{project}/environments/{env}",
        "environments",
        "Get an environment",
        "200",
    ),
    (
        "put",
        "/api/v1/projects/{project}/environments/{env}",
        "environments",
        "Replace an environment",
        "200",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/environments/{env}",
        "environments",
        "Delete an environment",
        "204",
    ),
    (
        "post",
        "/api/v1/projects/{project}/environments/{env}/evaluate",
        "environments",
        "Evaluate every flag for a context",
        "200",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags",
        "flags",
        "List flags (?q=&tag=&owner=&archived=&limit=&cursor=)",
        "200",
    ),
    (
        "post",
        "/api/v1/projects/{project}/flags",
        "flags",
        "Create a flag",
        "201",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}",
        "flags",
        "Get a flag with all environments",
        "200",
    ),
    (
        "put",
        "/api/v1/projects/{project}/flags/{flag}",
        "flags",
        "Replace a flag",
        "200",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/flags/{flag}",
        "flags",
        "Delete a flag",
        "204",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "flags",
        "Get a flag's config in one environment",
        "200",
    ),
    (
        "put",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "flags",
        "Replace a flag's config in one environment",
        "200",
    ),
    (
        "patch",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "flags",
        "JSON Merge Patch a flag's config (e.g. {\"enabled\": false})",
        "200",
    ),
    (
        "get",
        "/api/v1/projects/{project}/segments",
        "segments",
        "List segments",
        "200",
    ),
    (
        "post",
        "/api/v1/projects/{project}/segments",
        "segments",
        "Create a segment",
        "201",
    ),
    (
        "get",
        "/api/v1/projects/{project}/segments/{segment}",
        "segments",
        "Get a segment",
        "200",
    ),
    (
        "put",
        "/api/v1/projects/{project}/segments/{segment}",
        "segments",
        "Replace a segment",
        "200",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/segments/{segment}",
        "segments",
        "Delete a segment",
        "204",
    ),
    (
        "get",
        "/api/v1/tokens",
        "tokens",
        "List tokens (without secrets)",
        "200",
    ),
    (
        "post",
        "/api/v1/tokens",
        "tokens",
        "Create a token; the secret is in this response only",
        "201",
    ),
    (
        "delete",
        "/api/v1/tokens/{id}",
        "tokens",
        "Delete (revoke) a token",
        "204",
    ),
    (
        "get",
        "/health/live",
        "operations",
        "The process is up",
        "200",
    ),
    (
        "get",
        "/health/ready",
        "operations",
        "The store is reachable",
        "200",
    ),
    ("get", "/openapi.json", "operations", "This document", "200"),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/insights",
        "flags",
        "Evaluation counts per environment, hour, variant and reason (?env=&from=&to=), and when the flag was last evaluated",
        "200",
    ),
    (
        "get",
        "/api/v1/sdk/config",
        "sdk",
        "The token's environment's rule set (flags and segments) for in-process SDKs; ETag / If-None-Match → 304 (server token)",
        "200",
    ),
    (
        "get",
        "/api/v1/sdk/stream",
        "sdk",
        "Server-Sent Events: `config` events with the rule set on connect and after every change; Last-Event-ID resumes (server token)",
        "200",
    ),
    (
        "post",
        "/ofrep/v1/evaluate/flags/{key}",
        "ofrep",
        "OFREP 0.3: evaluate one flag for {context} (server or client token; Bearer or X-API-Key)",
        "200",
    ),
    (
        "post",
        "/ofrep/v1/evaluate/flags",
        "ofrep",
        "OFREP 0.3: evaluate every flag for {context}; ETag / If-None-Match → 304; eventStreams names the SSE stream",
        "200",
    ),
    (
        "get",
        "/ofrep/v1/events",
        "ofrep",
        "OFREP event stream (SSE, refetchEvaluation events); the URL with its signed ?ticket= comes from a bulk response's eventStreams",
        "200",
    ),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

fn method(m: &str) -> HttpMethod {
    match m {
        "post" => HttpMethod::Post,
        "put" => HttpMethod::Put,
        "patch" => HttpMethod::Patch,
        "delete" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The OpenAPI 3.1 document of the HTTP API.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (m, path, tag, summary, ok) in ROUTES {
        let mut op = OperationBuilder::new()
            .tag(*tag)
            .summary(Some(*summary))
            .response(*ok, ResponseBuilder::new().description("Success"));
        for param in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(param)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True),
            );
        }
        if path.starts_with("/ofrep/v1/evaluate") {
            for (status, what) in [
                (
                    "400",
                    "PARSE_ERROR or INVALID_CONTEXT: {key?, errorCode, errorDetails}",
                ),
                ("401", "Missing or invalid token"),
                ("403", "Token is not a server or client token"),
                ("404", "FLAG_NOT_FOUND (single flag)"),
                ("429", "Rate limited; Retry-After says when to retry"),
                ("500", "{errorDetails}"),
            ] {
                op = op.response(status, ResponseBuilder::new().description(what));
            }
        } else if path.starts_with("/api/") {
            for (status, what) in [
                ("400", "Malformed request (problem+json)"),
                ("401", "Missing or invalid token"),
                ("403", "Token not allowed"),
                ("404", "Not found"),
                (
                    "409",
                    "Already exists, or others depend on it (names the dependants)",
                ),
                ("412", "If-Match names a stale version; nothing changed"),
                ("413", "Body too large"),
                ("422", "Invalid content: errors[{field, message}]"),
                ("503", "Storage unavailable"),
            ] {
                op = op.response(status, ResponseBuilder::new().description(what));
            }
        }
        paths = paths.path(*path, PathItem::new(method(m), op.build()));
    }
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hata")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Self-hosted feature flags: admin API, OFREP, SDK rule sets.",
                )),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .build(),
        ))
        .build();
    doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}
