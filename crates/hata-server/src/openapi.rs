//! `GET /openapi.json`: the OpenAPI 3.1 document, built with utoipa from the route table below.
//!
//! `ROUTES` is the one list of what the server serves: every route has a row naming its
//! request body, success body, query parameters and conditional-request headers. The schemas
//! are derived (`utoipa::ToSchema`) from the types that serde reads and writes (hata-core's
//! model, hata-store's records, hata-serving's OFREP success shape, the handlers' own request
//! types); only the other OFREP shapes, which `routes::ofrep` writes by hand, are described by
//! the mirror types in this module.
//! `tests/openapi.rs` validates real responses against the document, and `tests/admin_api.rs`
//! checks that every documented operation is routed.

use std::collections::BTreeMap;

use axum::routing::get;
use axum::{Json, Router};
use hata_core::evaluate::{ErrorCode, Evaluation};
use hata_core::model::{Environment, Flag, FlagConfig, Segment};
use hata_store::{EnvironmentRecord, MemberRecord, Page, ProjectRecord, TokenRecord, UserRecord};

use crate::auth::access::Access;
use serde::Serialize;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::Problem;
use crate::extract::Paging;
use crate::routes::audit::{schema as audit_schema, AuditQuery, ExportQuery, HistoryQuery};
use crate::routes::auth::{LoginRequest, LoginResponse, Me};
use crate::routes::environments::{EnvironmentUpdate, EvaluateRequest};
use crate::routes::flags::FlagQuery;
use crate::routes::insights::{Insights, InsightsQuery};
use crate::routes::jobs::{JobsOverview, JobsQuery};
use crate::routes::members::MemberRequest;
use crate::routes::projects::{NewProject, ProjectUpdate};
use crate::routes::reports::{DailyQuery, StaleQuery};
use crate::routes::tokens::{RotateRequest, TokenQuery, TokenRequest, TokenView};
use crate::routes::totp::{RecoveryCodes, TotpConfirm, TotpEnrolment, TotpRemoval};
use crate::routes::users::{NewUserRequest, PasswordChange, UserPatch, UserWithProjects};
use crate::AppState;
use hata_core::key::KEY_PATTERN;
use hata_serving::ofrep_json::OfrepEvaluationSuccess;
use hata_serving::SdkConfig;

/// The component schemas a document needs, collected while its operations are built.
#[derive(Default)]
pub struct Schemas(BTreeMap<String, RefOr<Schema>>);

impl Schemas {
    /// Registers `T` and everything it references; returns a `$ref` to it.
    fn add<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        if !self.0.contains_key(&name) {
            self.0.insert(name.clone(), T::schema());
            let mut deps = Vec::new();
            T::schemas(&mut deps);
            self.0.extend(deps);
        }
        Ref::from_schema_name(name).into()
    }

    /// Registers a named schema built here; returns a `$ref` to it.
    fn named(
        &mut self,
        name: &str,
        schema: impl FnOnce(&mut Self) -> RefOr<Schema>,
    ) -> RefOr<Schema> {
        if !self.0.contains_key(name) {
            let built = schema(self);
            self.0.insert(name.to_string(), built);
        }
        Ref::from_schema_name(name).into()
    }
}

/// Builds the schema of a body, registering the components it needs.
pub type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// `T` by reference.
fn of<T: ToSchema>(s: &mut Schemas) -> RefOr<Schema> {
    s.add::<T>()
}

/// `Page<T>` (`{items, next_cursor}`), registered as `<T>Page`.
fn page_of<T: ToSchema + Serialize>(s: &mut Schemas) -> RefOr<Schema> {
    s.add::<T>();
    s.named(&format!("{}Page", T::name()), |_| Page::<T>::schema())
}

/// What every project endpoint answers: the record plus its environments.
fn project_with_environments(s: &mut Schemas) -> RefOr<Schema> {
    s.named("ProjectWithEnvironments", |s| {
        let record = s.add::<ProjectRecord>();
        let environments = s.add::<EnvironmentRecord>();
        AllOfBuilder::new()
            .description(Some("A project record with its environments"))
            .item(record)
            .item(
                ObjectBuilder::new()
                    .property("environments", ArrayBuilder::new().items(environments))
                    .required("environments"),
            )
            .into()
    })
}

fn created_token(s: &mut Schemas) -> RefOr<Schema> {
    s.named("CreatedToken", |s| {
        let record = s.add::<TokenRecord>();
        AllOfBuilder::new()
            .description(Some(
                "The new token's record and its secret: the only time the secret is shown",
            ))
            .item(record)
            .item(
                ObjectBuilder::new()
                    .property(
                        "secret",
                        ObjectBuilder::new()
                            .schema_type(SchemaType::new(Type::String))
                            .description(Some("The bearer token; store it now")),
                    )
                    .required("secret"),
            )
            .into()
    })
}

fn evaluate_response(s: &mut Schemas) -> RefOr<Schema> {
    s.named("EnvironmentEvaluation", |s| {
        let evaluation = s.add::<Evaluation<'static>>();
        ObjectBuilder::new()
            .description(Some(
                "Every flag of the environment evaluated for the context",
            ))
            .property(
                "revision",
                ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)),
            )
            .required("revision")
            .property("results", ArrayBuilder::new().items(evaluation))
            .required("results")
            .into()
    })
}

/// A JSON Merge Patch of `T`, registered as `name`.
fn merge_patch_of<T: ToSchema>(s: &mut Schemas, name: &str, description: &str) -> RefOr<Schema> {
    s.named(name, |s| {
        s.add::<T>();
        ObjectBuilder::new().description(Some(description)).into()
    })
}

fn config_merge_patch(s: &mut Schemas) -> RefOr<Schema> {
    merge_patch_of::<FlagConfig>(
        s,
        "FlagConfigMergePatch",
        "An RFC 7396 JSON Merge Patch of a FlagConfig: members replace, `null` removes \
         (back to the default). The kill switch is `{\"enabled\": false}`. A patch that \
         changes nothing writes nothing: same version, same ETag.",
    )
}

fn flag_merge_patch(s: &mut Schemas) -> RefOr<Schema> {
    merge_patch_of::<Flag>(
        s,
        "FlagMergePatch",
        "An RFC 7396 JSON Merge Patch of a Flag's flag-level fields (name, description, owner, \
         tags, temporary, archived, variants), e.g. `{\"archived\": true}`. `key` and `type` \
         cannot change (422), and `environments` are patched one at a time through \
         `…/environments/{env}` (422 here). A patch that changes nothing writes nothing: same \
         version, same ETag.",
    )
}

fn health(s: &mut Schemas) -> RefOr<Schema> {
    s.named("Health", |_| {
        let string = || ObjectBuilder::new().schema_type(SchemaType::new(Type::String));
        ObjectBuilder::new()
            .property("status", string().enum_values(Some(["up", "down"])))
            .required("status")
            .property("store", string().enum_values(Some(["up", "down"])))
            .property(
                "snapshots",
                string().enum_values(Some(["loaded", "loading"])),
            )
            .property(
                "environments",
                ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)),
            )
            .property("detail", string())
            .property(
                "checks",
                ObjectBuilder::new().description(Some(
                    "Each check by name (store, rule_sets; change_listener on PostgreSQL; redis \
                     when configured): {status: up|down, …}. Only store and rule_sets decide \
                     readiness.",
                )),
            )
            .property(
                "draining",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Boolean))
                    .description(Some(
                        "Shutting down: in-flight requests finish, new ones go elsewhere",
                    )),
            )
            .into()
    })
}

fn any_object(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new().into()
}

fn event_stream(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some("A stream of Server-Sent Events"))
        .into()
}

/// A request or response body: its content type and schema.
#[derive(Clone, Copy)]
pub struct Body {
    pub content_type: &'static str,
    pub schema: SchemaFn,
}

const fn json(schema: SchemaFn) -> Option<Body> {
    Some(Body {
        content_type: "application/json",
        schema,
    })
}

/// Which family of errors a route answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// The admin API: problem+json for every error status.
    Admin,
    /// OFREP evaluation: OFREP failure bodies for evaluation errors, problem+json for
    /// authentication and limits.
    Ofrep,
    /// SDK config and streams: problem+json for 401, 403, 404.
    Evaluator,
    /// Operations endpoints.
    None,
}

/// One served operation.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// The success status.
    pub ok: &'static str,
    pub request: Option<Body>,
    /// The request body may be left out (`OptionalJsonBody`).
    pub request_optional: bool,
    /// The success body (`None` for 204).
    pub response: Option<Body>,
    pub query: Option<fn() -> Vec<Parameter>>,
    /// The success carries `ETag`.
    pub etag: bool,
    /// Takes `If-Match` (412 on a stale version).
    pub if_match: bool,
    /// Takes `If-None-Match` (304 when unchanged).
    pub if_none_match: bool,
    pub errors: Errors,
    /// Who may call it (`auth::access`).
    pub access: Access,
}

const fn route(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        tag,
        summary,
        ok: "200",
        request: None,
        request_optional: false,
        response: None,
        query: None,
        etag: false,
        if_match: false,
        if_none_match: false,
        errors: Errors::Admin,
        access: Access::Unstated,
    }
}

impl Route {
    const fn ok(mut self, status: &'static str) -> Route {
        self.ok = status;
        self
    }
    const fn takes(mut self, body: SchemaFn) -> Route {
        self.request = json(body);
        self
    }
    /// A body that may be left out (an empty body is its defaults).
    const fn may_take(mut self, body: SchemaFn) -> Route {
        self.request = json(body);
        self.request_optional = true;
        self
    }
    const fn gives(mut self, body: SchemaFn) -> Route {
        self.response = json(body);
        self
    }
    /// A success body that is not JSON.
    const fn gives_as(mut self, content_type: &'static str, schema: SchemaFn) -> Route {
        self.response = Some(Body {
            content_type,
            schema,
        });
        self
    }
    const fn streams(mut self) -> Route {
        self.response = Some(Body {
            content_type: "text/event-stream",
            schema: event_stream,
        });
        self
    }
    const fn query(mut self, params: fn() -> Vec<Parameter>) -> Route {
        self.query = Some(params);
        self
    }
    /// A versioned resource: `ETag` on success.
    const fn versioned(mut self) -> Route {
        self.etag = true;
        self
    }
    /// A change of a versioned resource: `If-Match`, and `ETag` unless it deletes.
    const fn guarded(mut self) -> Route {
        self.if_match = true;
        self.etag = self.response.is_some();
        self
    }
    const fn conditional(mut self) -> Route {
        self.etag = true;
        self.if_none_match = true;
        self
    }
    const fn access(mut self, access: Access) -> Route {
        self.access = access;
        self
    }
    const fn errors(mut self, errors: Errors) -> Route {
        self.errors = errors;
        self
    }
}

fn paging() -> Vec<Parameter> {
    Paging::into_params(|| Some(ParameterIn::Query))
}

fn sso_login_query() -> Vec<Parameter> {
    crate::routes::sso::LoginQuery::into_params(|| Some(ParameterIn::Query))
}

fn sso_callback_query() -> Vec<Parameter> {
    crate::routes::sso::CallbackQuery::into_params(|| Some(ParameterIn::Query))
}

fn audit_query() -> Vec<Parameter> {
    AuditQuery::into_params(|| Some(ParameterIn::Query))
}

fn audit_export_query() -> Vec<Parameter> {
    ExportQuery::into_params(|| Some(ParameterIn::Query))
}

fn history_query() -> Vec<Parameter> {
    HistoryQuery::into_params(|| Some(ParameterIn::Query))
}

fn json_lines(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(
            "JSON Lines, oldest first: audit entries, and `{\"checkpoint\": {seq, hash, at, key_id, signature}}` after the entry at its seq (docs/audit.md)",
        ))
        .into()
}

fn pem_text(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some("An Ed25519 public key, PEM (SubjectPublicKeyInfo)"))
        .into()
}

fn metrics_text(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(
            "Prometheus text exposition format 0.0.4 (families in docs/operations.md)",
        ))
        .into()
}

fn token_query() -> Vec<Parameter> {
    TokenQuery::into_params(|| Some(ParameterIn::Query))
}

fn flag_query() -> Vec<Parameter> {
    FlagQuery::into_params(|| Some(ParameterIn::Query))
}

fn insights_query() -> Vec<Parameter> {
    InsightsQuery::into_params(|| Some(ParameterIn::Query))
}

fn jobs_query() -> Vec<Parameter> {
    JobsQuery::into_params(|| Some(ParameterIn::Query))
}

fn daily_report_query() -> Vec<Parameter> {
    DailyQuery::into_params(|| Some(ParameterIn::Query))
}

fn stale_report_query() -> Vec<Parameter> {
    StaleQuery::into_params(|| Some(ParameterIn::Query))
}

fn bulk_query() -> Vec<Parameter> {
    OfrepBulkQuery::into_params(|| Some(ParameterIn::Query))
}

fn ticket_query() -> Vec<Parameter> {
    OfrepEventsQuery::into_params(|| Some(ParameterIn::Query))
}

/// Every route the server serves. Paths are literal so that a reader can grep for them.
pub const ROUTES: &[Route] = &[
    route("get", "/api/v1/projects", "projects", "List projects")
    .access(Access::Authenticated)
        .query(paging)
        .gives(page_of::<ProjectRecord>),
    route(
        "post",
        "/api/v1/projects",
        "projects",
        "Create a project (default environments: development, production)",
    )
    .access(Access::Admin)
    .ok("201")
    .takes(of::<NewProject>)
    .gives(project_with_environments)
    .versioned(),
    route(
        "get",
        "/api/v1/projects/{project}",
        "projects",
        "Get a project with its environments",
    )
    .access(Access::Read)
    .gives(project_with_environments)
    .versioned(),
    route(
        "put",
        "/api/v1/projects/{project}",
        "projects",
        "Replace a project's name and description",
    )
    .access(Access::Own)
    .takes(of::<ProjectUpdate>)
    .gives(project_with_environments)
    .guarded(),
    route(
        "delete",
        "/api/v1/projects/{project}",
        "projects",
        "Delete a project with everything in it",
    )
    .access(Access::Admin)
    .ok("204")
    .guarded(),
    route(
        "get",
        "/api/v1/projects/{project}/environments",
        "environments",
        "List environments",
    )
    .access(Access::Read)
    .query(paging)
    .gives(page_of::<EnvironmentRecord>),
    route(
        "post",
        "/api/v1/projects/{project}/environments",
        "environments",
        "Create an environment (every flag gets a disabled config in it)",
    )
    .access(Access::Own)
    .ok("201")
    .takes(of::<Environment>)
    .gives(of::<EnvironmentRecord>)
    .versioned(),
    route(
        "get",
        "/api/v1/projects/{project}/environments/{env}",
        "environments",
        "Get an environment",
    )
    .access(Access::Read)
    .gives(of::<EnvironmentRecord>)
    .versioned(),
    route(
        "put",
        "/api/v1/projects/{project}/environments/{env}",
        "environments",
        "Replace an environment",
    )
    .access(Access::Own)
    .takes(of::<EnvironmentUpdate>)
    .gives(of::<EnvironmentRecord>)
    .guarded(),
    route(
        "delete",
        "/api/v1/projects/{project}/environments/{env}",
        "environments",
        "Delete an environment",
    )
    .access(Access::Own)
    .ok("204")
    .guarded(),
    route(
        "post",
        "/api/v1/projects/{project}/environments/{env}/evaluate",
        "environments",
        "Evaluate every flag for a context, with reasons (what does this user see?)",
    )
    .access(Access::Read)
    .takes(of::<EvaluateRequest>)
    .gives(evaluate_response),
    route(
        "get",
        "/api/v1/projects/{project}/flags",
        "flags",
        "List flags",
    )
    .access(Access::Read)
    .query(flag_query)
    .gives(page_of::<Flag>),
    route(
        "post",
        "/api/v1/projects/{project}/flags",
        "flags",
        "Create a flag; environments not given get the default (disabled) config",
    )
    .access(Access::Write)
    .ok("201")
    .takes(of::<Flag>)
    .gives(of::<Flag>)
    .versioned(),
    route(
        "get",
        "/api/v1/projects/{project}/flags/{flag}",
        "flags",
        "Get a flag with all environments",
    )
    .access(Access::Read)
    .gives(of::<Flag>)
    .versioned(),
    route(
        "put",
        "/api/v1/projects/{project}/flags/{flag}",
        "flags",
        "Replace a flag; environments the body does not name keep their config",
    )
    .access(Access::Write)
    .takes(of::<Flag>)
    .gives(of::<Flag>)
    .guarded(),
    Route {
        request: Some(Body {
            content_type: "application/merge-patch+json",
            schema: flag_merge_patch,
        }),
        ..route(
            "patch",
            "/api/v1/projects/{project}/flags/{flag}",
            "flags",
            "JSON Merge Patch a flag's flag-level fields (archive: {\"archived\": true})",
        )
    .access(Access::Write)
        .gives(of::<Flag>)
        .guarded()
    },
    route(
        "delete",
        "/api/v1/projects/{project}/flags/{flag}",
        "flags",
        "Delete a flag (409 while other flags depend on it)",
    )
    .access(Access::Write)
    .ok("204")
    .guarded(),
    route(
        "get",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "flags",
        "Get a flag's config in one environment (ETag: the flag's version)",
    )
    .access(Access::Read)
    .gives(of::<FlagConfig>)
    .versioned(),
    route(
        "put",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "flags",
        "Replace a flag's config in one environment",
    )
    .access(Access::Write)
    .takes(of::<FlagConfig>)
    .gives(of::<FlagConfig>)
    .guarded(),
    Route {
        request: Some(Body {
            content_type: "application/merge-patch+json",
            schema: config_merge_patch,
        }),
        ..route(
            "patch",
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
            "flags",
            "JSON Merge Patch a flag's config (the kill switch: {\"enabled\": false})",
        )
    .access(Access::Write)
        .gives(of::<FlagConfig>)
        .guarded()
    },
    route(
        "get",
        "/api/v1/projects/{project}/flags/{flag}/insights",
        "flags",
        "Evaluation counts per environment, hour, variant and reason, and when the flag was last evaluated",
    )
    .access(Access::Read)
    .query(insights_query)
    .gives(of::<Insights>),
    route(
        "get",
        "/api/v1/projects/{project}/segments",
        "segments",
        "List segments",
    )
    .access(Access::Read)
    .query(paging)
    .gives(page_of::<Segment>),
    route(
        "post",
        "/api/v1/projects/{project}/segments",
        "segments",
        "Create a segment",
    )
    .access(Access::Write)
    .ok("201")
    .takes(of::<Segment>)
    .gives(of::<Segment>)
    .versioned(),
    route(
        "get",
        "/api/v1/projects/{project}/segments/{segment}",
        "segments",
        "Get a segment",
    )
    .access(Access::Read)
    .gives(of::<Segment>)
    .versioned(),
    route(
        "put",
        "/api/v1/projects/{project}/segments/{segment}",
        "segments",
        "Replace a segment",
    )
    .access(Access::Write)
    .takes(of::<Segment>)
    .gives(of::<Segment>)
    .guarded(),
    route(
        "delete",
        "/api/v1/projects/{project}/segments/{segment}",
        "segments",
        "Delete a segment (409 while flags use it)",
    )
    .access(Access::Write)
    .ok("204")
    .guarded(),
    route("get", "/api/v1/tokens", "tokens", "List tokens (without secrets), with when each stops working; ?due=true lists those to rotate")
    .access(Access::Authenticated)
        .query(token_query)
        .gives(page_of::<TokenView>),
    route(
        "post",
        "/api/v1/tokens",
        "tokens",
        "Create a token; the secret is in this response only",
    )
    .access(Access::Authenticated)
    .ok("201")
    .takes(of::<TokenRequest>)
    .gives(created_token)
    .versioned(),
    route("delete", "/api/v1/tokens/{id}", "tokens", "Delete (revoke) a token")
    .access(Access::Authenticated).ok("204"),
    route(
        "post",
        "/api/v1/tokens/{id}/rotate",
        "tokens",
        "Rotate a token: a new secret (shown once); the old one works until old_valid_until (default 24 h)",
    )
    .access(Access::Authenticated)
    .ok("201")
    .may_take(of::<RotateRequest>)
    .gives(created_token),
    route(
        "post",
        "/api/v1/auth/login",
        "identity",
        "Log in with email, password and (with two-factor authentication on) `totp`: sets the session cookie; one 401 for every wrong credential; 429 while throttled or locked",
    )
    .access(Access::Public)
    .takes(of::<LoginRequest>)
    .gives(of::<LoginResponse>),
    route(
        "post",
        "/api/v1/auth/logout",
        "identity",
        "End the caller's session (on every replica) and clear its cookie (sessions only: a \
         token is revoked with DELETE /api/v1/tokens/{id})",
    )
    .access(Access::User)
    .ok("204"),
    route("get", "/api/v1/auth/me", "identity", "The caller: kind, id, name, roles and (for a session) the CSRF token")
        .access(Access::Authenticated)
        .gives(of::<Me>),
    route(
        "get",
        "/api/v1/auth/oidc/login",
        "identity",
        "Single sign-on: 303 to the OpenID provider (authorization code flow with PKCE); 404 when not configured",
    )
    .access(Access::Public)
    .ok("303")
    .query(sso_login_query),
    route(
        "get",
        "/api/v1/auth/oidc/callback",
        "identity",
        "Single sign-on: where the provider sends the browser back; sets the session cookie and answers 303 to return_to; 401 naming what failed",
    )
    .access(Access::Public)
    .ok("303")
    .query(sso_callback_query),
    route(
        "post",
        "/api/v1/auth/totp",
        "identity",
        "Start enrolling an authenticator app: its secret and otpauth:// URI (409 while two-factor authentication is on)",
    )
    .access(Access::User)
    .ok("201")
    .gives(of::<TotpEnrolment>),
    route(
        "post",
        "/api/v1/auth/totp/confirm",
        "identity",
        "Confirm the authenticator with its current code: two-factor authentication is on, other sessions end, and the ten recovery codes are answered once",
    )
    .access(Access::User)
    .takes(of::<TotpConfirm>)
    .gives(of::<RecoveryCodes>),
    route(
        "delete",
        "/api/v1/auth/totp",
        "identity",
        "Turn two-factor authentication off, with one's password and a current or recovery code",
    )
    .access(Access::User)
    .ok("204")
    .takes(of::<TotpRemoval>),
    route("get", "/api/v1/users", "identity", "List users (admin)")
        .access(Access::Admin)
        .query(paging)
        .gives(page_of::<UserRecord>),
    route("post", "/api/v1/users", "identity", "Create a user (admin)")
        .access(Access::Admin)
        .ok("201")
        .takes(of::<NewUserRequest>)
        .gives(of::<UserRecord>)
        .versioned(),
    route("get", "/api/v1/users/{id}", "identity", "Get a user and its roles (admin)")
        .access(Access::Admin)
        .gives(of::<UserWithProjects>)
        .versioned(),
    route(
        "patch",
        "/api/v1/users/{id}",
        "identity",
        "Change a user's name, admin flag, disabled flag or password (admin; a new password or disabling ends its sessions)",
    )
    .access(Access::Admin)
    .takes(of::<UserPatch>)
    .gives(of::<UserRecord>)
    .guarded(),
    route("delete", "/api/v1/users/{id}", "identity", "Delete a user (admin; 409 for the last administrator)")
        .access(Access::Admin)
        .ok("204")
        .guarded(),
    route(
        "delete",
        "/api/v1/users/{id}/totp",
        "identity",
        "Turn a user's two-factor authentication off, for one who lost the authenticator (admin; 204 when it was off already)",
    )
    .access(Access::Admin)
    .ok("204"),
    route(
        "put",
        "/api/v1/users/me/password",
        "identity",
        "Change one's own password (ends one's other sessions)",
    )
    .access(Access::User)
    .ok("204")
    .takes(of::<PasswordChange>),
    route("get", "/api/v1/projects/{project}/members", "identity", "List a project's members and their roles")
        .access(Access::Read)
        .query(paging)
        .gives(page_of::<MemberRecord>),
    route(
        "put",
        "/api/v1/projects/{project}/members/{user_id}",
        "identity",
        "Give a user a role in the project (owner, up to one's own role)",
    )
    .access(Access::Own)
    .takes(of::<MemberRequest>)
    .gives(of::<MemberRecord>),
    route(
        "delete",
        "/api/v1/projects/{project}/members/{user_id}",
        "identity",
        "Remove a user from the project",
    )
    .access(Access::Own)
    .ok("204"),
    route(
        "get",
        "/api/v1/sdk/config",
        "sdk",
        "The token's environment's rule set (flags and segments) for in-process SDKs (server token)",
    )
    .access(Access::EvaluateServer)
    .gives(of::<SdkConfig<'static>>)
    .conditional()
    .errors(Errors::Evaluator),
    route(
        "get",
        "/api/v1/sdk/stream",
        "sdk",
        "Server-Sent Events: `config` events with the rule set on connect and after every change; Last-Event-ID resumes (server token)",
    )
    .access(Access::EvaluateServer)
    .streams()
    .errors(Errors::Evaluator),
    route(
        "post",
        "/ofrep/v1/evaluate/flags/{key}",
        "ofrep",
        "OFREP: evaluate one flag for a context (server or client token; Bearer or X-API-Key)",
    )
    .access(Access::Evaluate)
    .takes(of::<OfrepEvaluationRequest>)
    .gives(of::<OfrepEvaluationSuccess>)
    .errors(Errors::Ofrep),
    route(
        "post",
        "/ofrep/v1/evaluate/flags",
        "ofrep",
        "OFREP: evaluate every flag for a context; eventStreams names the change stream",
    )
    .access(Access::Evaluate)
    .takes(of::<OfrepEvaluationRequest>)
    .gives(of::<OfrepBulkEvaluationSuccess>)
    .query(bulk_query)
    .conditional()
    .errors(Errors::Ofrep),
    route(
        "get",
        "/ofrep/v1/events",
        "ofrep",
        "OFREP event stream (SSE `refetchEvaluation` events); its URL, with a signed ticket in place of the token, comes from a bulk response's eventStreams",
    )
    .access(Access::Ticket)
    .query(ticket_query)
    .streams()
    .errors(Errors::Evaluator),
    route(
        "get",
        "/api/v1/audit",
        "audit",
        "Audit entries, newest first, by project, environment, resource, actor, action and time (admins: all; owners: their projects')",
    )
    .access(Access::Authenticated)
    .query(audit_query)
    .gives(page_of::<audit_schema::Entry>),
    route(
        "get",
        "/api/v1/projects/{project}/flags/{flag}/history",
        "audit",
        "One flag's audit entries, newest first (also after it was deleted)",
    )
    .access(Access::Own)
    .query(history_query)
    .gives(page_of::<audit_schema::Entry>),
    route(
        "get",
        "/api/v1/audit/export",
        "audit",
        "The audit log as JSON Lines with its signed checkpoints, oldest first, for `hata audit verify --from-file`",
    )
    .access(Access::Admin)
    .query(audit_export_query)
    .gives_as("application/jsonl", json_lines),
    route(
        "get",
        "/api/v1/audit/verify",
        "audit",
        "Recompute the stored chain: 200 {ok: true, entries, head} or {ok: false, entries, first_bad: {seq, reason}}",
    )
    .access(Access::Admin)
    .gives(of::<audit_schema::Verification>),
    route(
        "get",
        "/api/v1/audit/public-key",
        "audit",
        "The Ed25519 public key that verifies the audit checkpoints (PEM); 404 when the server signs none",
    )
    .access(Access::Public)
    .gives_as("text/plain", pem_text),
    route(
        "get",
        "/api/v1/jobs",
        "jobs",
        "The scheduled jobs (schedule, next run, last run) and their most recent runs, newest first",
    )
    .access(Access::Admin)
    .query(jobs_query)
    .gives(of::<JobsOverview>),
    route(
        "post",
        "/api/v1/jobs/{job}/run",
        "jobs",
        "Run a job now: 202 with the run (pending until a replica running jobs takes it); 404 names an unknown job; 409 when jobs are off on this server",
    )
    .access(Access::Admin)
    .ok("202")
    .gives(of::<hata_store::JobRun>),
    route(
        "get",
        "/api/v1/reports/daily",
        "reports",
        "One UTC day: requests, latency, evaluations, flag changes, jobs, uptime and the error budget (docs/operations.md, Reports)",
    )
    .access(Access::Admin)
    .query(daily_report_query)
    .gives(of::<hata_reports::DailyReport>),
    route(
        "get",
        "/api/v1/reports/stale",
        "reports",
        "Removal candidates with their owners: flags not evaluated, serving one variant, or temporary past their lifetime",
    )
    .access(Access::Admin)
    .query(stale_report_query)
    .gives(of::<hata_reports::StaleReport>),
    route(
        "get",
        "/api/v1/backups",
        "operations",
        "The backups at the configured destination (--backup-to): complete ones (their manifests, oldest first) and unfinished ones; 502 when the destination does not answer",
    )
    .access(Access::Admin)
    .gives(of::<crate::routes::backups::BackupList>),
    route("get", "/health/live", "operations", "The process is up")
    .access(Access::Public)
        .gives(health)
        .errors(Errors::None),
    route(
        "get",
        "/health/ready",
        "operations",
        "Rule sets loaded and the store reachable (503 otherwise; evaluations go on from memory)",
    )
    .access(Access::Public)
    .gives(health)
    .errors(Errors::None),
    route(
        "get",
        "/metrics",
        "operations",
        "Prometheus metrics; with `--metrics-token` set, only for `Authorization: Bearer <that token>` (401 otherwise)",
    )
    .access(Access::Public)
    .gives_as("text/plain; version=0.0.4", metrics_text)
    .errors(Errors::None),
    route("get", "/openapi.json", "operations", "This document")
    .access(Access::Public)
        .gives(any_object)
        .errors(Errors::None),
];

// ---- OFREP shapes (written by hand in `routes::ofrep`; mirrored here) -----------------------
// The success shape is declared once, in `hata_serving::ofrep_json`, and used from there.

/// OFREP `evaluationRequest` / `bulkEvaluationRequest`.
#[derive(ToSchema)]
pub struct OfrepEvaluationRequest {
    pub context: OfrepContext,
}

/// The evaluation context: `targetingKey` (a string) names the subject; every other member is
/// an attribute.
#[derive(ToSchema)]
pub struct OfrepContext {
    #[serde(rename = "targetingKey")]
    pub targeting_key: Option<String>,
    #[serde(flatten)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// OFREP `evaluationFailure` / `bulkEvaluationFailure` (400, and 404 for a missing flag).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEvaluationFailure {
    /// Absent on bulk failures.
    pub key: Option<String>,
    /// OpenFeature's error codes, as the engine names them.
    pub error_code: ErrorCode,
    pub error_details: String,
}

/// OFREP `generalErrorResponse` (500).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepGeneralError {
    pub error_details: String,
}

/// OFREP `bulkEvaluationSuccess`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkEvaluationSuccess {
    pub flags: Vec<OfrepEvaluationSuccess>,
    pub event_streams: Vec<OfrepEventStream>,
    pub metadata: OfrepBulkMetadata,
}

/// Where to listen for changes: `GET` the `url` as Server-Sent Events.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEventStream {
    /// `sse`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The stream's URL, with a signed ticket in place of the token: treat it as a secret.
    pub url: String,
    #[schema(minimum = 1)]
    pub inactivity_delay_sec: u64,
}

/// The rule set the answer was computed from.
#[derive(ToSchema)]
pub struct OfrepBulkMetadata {
    pub project: String,
    pub environment: String,
    pub revision: i64,
}

/// `POST /ofrep/v1/evaluate/flags` query: what a change event announced (OFREP ADR-0008).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct OfrepBulkQuery {
    /// The `etag` of the `refetchEvaluation` event that caused this request: the answer is at
    /// least that fresh.
    pub flag_config_etag: Option<String>,
    /// The event's `lastModified` (accepted; the ETag alone decides freshness).
    pub flag_config_last_modified: Option<String>,
}

/// `GET /ofrep/v1/events` query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OfrepEventsQuery {
    /// The signed ticket from the bulk response's `eventStreams[].url`.
    #[param(required = true)]
    pub ticket: Option<String>,
}

// ---- building the document -----------------------------------------------------------------

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

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(Type::String))
}

fn header_param(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(string_schema()))
        .build()
}

fn etag_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(string_schema())
        .description(Some(description))
        .build()
}

fn content(s: &mut Schemas, body: Body) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some((body.schema)(s))).build()
}

/// An error response with a body of `schema` as `content_type`.
fn error(description: &str, content_type: &str, schema: RefOr<Schema>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        content_type,
        ContentBuilder::new().schema(Some(schema)).build(),
    )
}

const PROBLEM: &str = "application/problem+json";

fn operation(s: &mut Schemas, r: &Route) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .tag(r.tag)
        .summary(Some(r.summary))
        .operation_id(Some(operation_id(r)));
    for param in r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        let schema = match param {
            // Keys (a path naming no such key is a 404 whatever its syntax).
            "project" | "env" | "flag" | "segment" | "key" => {
                string_schema().pattern(Some(KEY_PATTERN))
            }
            _ => string_schema(),
        };
        op = op.parameter(
            ParameterBuilder::new()
                .name(param)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema)),
        );
    }
    if let Some(query) = r.query {
        for p in query() {
            op = op.parameter(p);
        }
    }
    if r.if_match {
        op = op.parameter(header_param(
            "If-Match",
            "`*`, or the ETag of the version this change is based on (a list of ETags admits \
             any of them; weak ones never match). A stale version is a 412 that changes \
             nothing, and so is a value naming no version (not a list of ETags, or empty). \
             Without it the change applies to any version.",
        ));
    }
    if r.if_none_match {
        op = op.parameter(header_param(
            "If-None-Match",
            "The ETag of the answer the client has; 304 while it is still current.",
        ));
    }
    if r.path.ends_with("/stream") || r.path.ends_with("/events") {
        op = op.parameter(header_param(
            "Last-Event-ID",
            "The id of the last event received; the stream resumes after it.",
        ));
    }
    if let Some(body) = r.request {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(if r.request_optional {
                    Required::False
                } else {
                    Required::True
                }))
                .content(body.content_type, content(s, body))
                .build(),
        ));
    }
    let mut ok = ResponseBuilder::new().description(match r.ok {
        "201" => "Created",
        "202" => "Accepted: it runs shortly",
        "204" => "Done; no body",
        _ => "Success",
    });
    if let Some(body) = r.response {
        ok = ok.content(body.content_type, content(s, body));
    }
    if r.etag {
        ok = ok.header(
            "ETag",
            etag_header(if r.if_none_match {
                "Names this answer; send it back as If-None-Match"
            } else {
                "\"<version>\": send it back as If-Match to change this version"
            }),
        );
    }
    op = op.response(r.ok, ok);
    if r.if_none_match {
        op = op.response(
            "304",
            ResponseBuilder::new()
                .description("Not modified: the If-None-Match ETag is current")
                .header("ETag", etag_header("The current ETag")),
        );
    }
    let problem = s.add::<Problem<'static>>();
    let has_body = r.request.is_some();
    match r.errors {
        Errors::Admin => {
            let mut statuses = vec![
                ("401", "Missing or invalid token"),
                ("403", "The token may not do this"),
            ];
            if has_body || r.query.is_some() || r.if_match {
                statuses.push(("400", "Malformed request: body, query or header"));
            }
            if r.path != "/api/v1/projects" && r.path != "/api/v1/tokens" {
                statuses.push(("404", "Not found"));
            }
            if r.method != "get" {
                statuses.push((
                    "409",
                    "Already exists, or others depend on it (problem.dependants names them)",
                ));
            }
            if r.if_match {
                statuses.push(("412", "If-Match names a stale version; nothing changed"));
            }
            if has_body {
                statuses.push(("413", "Body too large"));
            }
            if has_body || r.query.is_some() {
                statuses.push(("422", "Invalid content: problem.errors[{field, message}]"));
            }
            statuses.push(("503", "Storage unavailable; nothing changed"));
            statuses.sort();
            for (status, what) in statuses {
                op = op.response(status, error(what, PROBLEM, problem.clone()));
            }
            // Every admin answer carries the budget's `RateLimit-*` headers when budgets are
            // on (`--admin-rate-limit`, `--login-rate-limit`).
            let mut limited = error(
                "Over the caller's budget (admin API per principal or client address; logins per account and address)",
                PROBLEM,
                problem.clone(),
            )
            .header("Retry-After", retry_after_header());
            for (name, what) in [
                ("RateLimit-Limit", "Requests per window"),
                ("RateLimit-Remaining", "Requests left in the window"),
                ("RateLimit-Reset", "Seconds until the budget is whole again"),
            ] {
                limited = limited.header(name, integer_header(what));
            }
            op = op.response("429", limited);
        }
        Errors::Ofrep => {
            let failure = s.add::<OfrepEvaluationFailure>();
            let general = s.add::<OfrepGeneralError>();
            op = op.response(
                "400",
                error(
                    "PARSE_ERROR or INVALID_CONTEXT",
                    "application/json",
                    failure.clone(),
                ),
            );
            op = op.response(
                "401",
                error("Missing or invalid token", PROBLEM, problem.clone()),
            );
            op = op.response(
                "403",
                error("Not a server or client token", PROBLEM, problem.clone()),
            );
            if r.path.ends_with("{key}") {
                op = op.response("404", error("FLAG_NOT_FOUND", "application/json", failure));
            }
            op = op.response("413", error("Body too large", PROBLEM, problem.clone()));
            op = op.response(
                "429",
                error("Rate limited", PROBLEM, problem.clone())
                    .header("Retry-After", retry_after_header()),
            );
            op = op.response(
                "500",
                error("Internal error", "application/json", general.clone()),
            );
            op = op.response(
                "503",
                error(
                    "The token's environment is not loaded yet; retry after Retry-After",
                    "application/json",
                    general,
                )
                .header("Retry-After", retry_after_header()),
            );
        }
        Errors::Evaluator => {
            if r.query.is_some() {
                op = op.response(
                    "400",
                    error(
                        "Malformed query: problem.errors names the parameter",
                        PROBLEM,
                        problem.clone(),
                    ),
                );
            }
            for (status, what) in [
                ("401", "Missing or invalid token (or ticket)"),
                ("403", "Not a token of the right kind"),
                ("404", "The token's environment no longer exists"),
            ] {
                op = op.response(status, error(what, PROBLEM, problem.clone()));
            }
            op = op.response(
                "503",
                error(
                    "The token's environment is not loaded yet; retry after Retry-After",
                    PROBLEM,
                    problem.clone(),
                )
                .header("Retry-After", retry_after_header()),
            );
        }
        Errors::None => {
            if r.path == "/health/ready" {
                let health = health(s);
                op = op.response("503", error("Not ready", "application/json", health));
            }
        }
    }
    if matches!(r.errors, Errors::None) || matches!(r.access, Access::Public | Access::Ticket) {
        // Open to anyone (the event stream authenticates by its ticket, login by its body).
        op = op.securities(Some(Vec::<SecurityRequirement>::new()));
    } else if r.errors == Errors::Ofrep {
        op = op.securities(Some([
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("apiKey", Vec::<String>::new()),
        ]));
    }
    op.build()
}

/// `Retry-After` in seconds (429, 503).
fn integer_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)))
        .description(Some(description))
        .build()
}

fn retry_after_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)))
        .description(Some("Seconds to wait"))
        .build()
}

/// `listProjects`-style ids from method and path: unique, stable, usable as function names.
fn operation_id(r: &Route) -> String {
    let mut id = r.method.to_string();
    for segment in r.path.split('/').filter(|s| !s.is_empty()) {
        let word = segment
            .trim_start_matches('{')
            .trim_end_matches('}')
            .trim_end_matches(".json");
        let by = segment.starts_with('{');
        if matches!(word, "api" | "v1") {
            continue;
        }
        if by {
            id.push_str("By");
        }
        for part in word.split(['-', '_', '.']) {
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                id.extend(first.to_uppercase());
                id.push_str(chars.as_str());
            }
        }
    }
    id
}

/// The OpenAPI 3.1 document of the HTTP API.
pub fn document() -> OpenApi {
    let mut schemas = Schemas::default();
    let mut paths = PathsBuilder::new();
    for r in ROUTES {
        paths = paths.path(
            r.path,
            PathItem::new(method(r.method), operation(&mut schemas, r)),
        );
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
                .schemas_from_iter(schemas.0)
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .security_scheme(
                    "apiKey",
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
                )
                .security_scheme(
                    "session",
                    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                        hata_access::session::COOKIE,
                        "The session cookie set by POST /api/v1/auth/login; writes also need \
                         X-CSRF-Token",
                    ))),
                )
                .build(),
        ))
        .build();
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("session", Vec::<String>::new()),
    ]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<String> = ROUTES.iter().map(operation_id).collect();
        assert!(
            ids.contains(&"getProjectsByProjectFlagsByFlag".to_string()),
            "{ids:?}"
        );
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate operation ids");
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut keys: Vec<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "a route is listed twice");
    }
}
