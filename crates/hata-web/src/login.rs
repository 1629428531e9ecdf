//! Sign in and out: email and password, then the authenticator's code when the account has
//! one, through the admin API's own login (`hata_server::routes::auth::log_in`: the same
//! budgets, lockout, second factor and session cookie), a link to single sign-on when it is
//! configured, and logout (`log_out`). What the user typed is kept on an error, except the
//! password.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use hata_server::auth::identity::Identity;
use hata_server::auth::session::{self, Source};
use hata_server::error::AppError;
use hata_server::limits::Limits;
use hata_server::routes::auth::{log_in, log_out, Credentials, LoggedIn};
use hata_server::routes::Writer;
use hata_server::AppState;
use maud::html;
use serde::Deserialize;

use crate::page::{error_page, html, layout, see_other, url, SignedIn, Ui};

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// Present once the server asked for the second factor.
    code: Option<String>,
    next: Option<String>,
}

/// Where to go after signing in: a path on this server only (never `//host` or a URL).
fn next_path(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/projects",
    }
}

/// What the form shows besides its fields.
#[derive(Default)]
struct FormState<'a> {
    email: &'a str,
    next: &'a str,
    /// Ask for the authenticator's code.
    code: bool,
    /// A message for the whole form (role=alert).
    error: Option<String>,
    /// A message for the email field.
    email_error: Option<String>,
}

fn login_page(ui: &Ui, sso: bool, status: StatusCode, form: FormState<'_>) -> Response {
    let l = ui.l;
    let title = l.t("login.title");
    let body = html! {
        h1 { (title) }
        @if let Some(error) = &form.error {
            p.error #login-error role="alert" { (error) }
        }
        @if form.code {
            p.notice #code-help { (l.t("login.code_needed")) }
        }
        form.stack method="post" action="/login" {
            input type="hidden" name="next" value=(form.next);
            label {
                (l.t("login.email"))
                input #email type="email" name="email" value=(form.email) required autocomplete="username"
                    aria-invalid=[form.email_error.as_ref().map(|_| "true")]
                    aria-describedby=[form.email_error.as_ref().map(|_| "email-error")];
                @if let Some(e) = &form.email_error {
                    span.error #email-error { (e) }
                }
            }
            label {
                (l.t("login.password"))
                input #password type="password" name="password" required autocomplete="current-password";
            }
            @if form.code {
                label {
                    (l.t("login.code"))
                    input #code type="text" name="code" required inputmode="numeric"
                        autocomplete="one-time-code" aria-describedby="code-help";
                }
            }
            button.primary type="submit" { (l.t("login.submit")) }
        }
        @if sso {
            p { a href=(url("/api/v1/auth/oidc/login", &[("return_to".into(), form.next.into())])) { (l.t("login.sso")) } }
        }
    };
    html(ui, status, layout(ui, None, title, body))
}

/// `GET /login`
pub async fn show(
    ui: Ui,
    Extension(identity): Extension<Arc<Identity>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = next_path(q.next.as_deref());
    login_page(
        &ui,
        identity.sso.is_some(),
        StatusCode::OK,
        FormState {
            next,
            ..FormState::default()
        },
    )
}

/// `POST /login`
pub async fn submit(
    ui: Ui,
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Extension(limits): Extension<Arc<Limits>>,
    source: Source,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let l = ui.l;
    let next = next_path(form.next.as_deref());
    let asked_code = form.code.is_some();
    let credentials = Credentials {
        email: form.email.clone(),
        password: form.password,
        totp: form.code.filter(|c| !c.trim().is_empty()),
    };
    let (outcome, _) = log_in(&s, &identity, &limits, &source, &headers, credentials).await;
    let sso = identity.sso.is_some();
    let again = |status, code, error: Option<String>, email_error: Option<String>| {
        login_page(
            &ui,
            sso,
            status,
            FormState {
                email: &form.email,
                next,
                code,
                error,
                email_error,
            },
        )
    };
    match outcome {
        Ok(LoggedIn { cookie, .. }) => {
            let mut response = see_other(next);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(AppError::SecondFactorRequired) => again(StatusCode::OK, true, None, None),
        Err(AppError::BadLogin) => again(
            StatusCode::UNAUTHORIZED,
            asked_code,
            Some(l.t("login.bad").into()),
            None,
        ),
        Err(AppError::Invalid(errors)) => {
            let message = errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            again(
                StatusCode::UNPROCESSABLE_ENTITY,
                asked_code,
                None,
                Some(l.f("login.email_invalid", &[("reason", &message)])),
            )
        }
        Err(AppError::Throttled { retry_after, .. }) => again(
            StatusCode::TOO_MANY_REQUESTS,
            asked_code,
            Some(l.f("login.throttled", &[("seconds", &retry_after.to_string())])),
            None,
        ),
        Err(e) => error_page(&ui, None, e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`
pub async fn logout(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    source: Source,
    Writer(w): Writer,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&form.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(e) = log_out(&s, &w, &who.session.id).await {
        return error_page(&ui, Some(&who), e);
    }
    let mut response = see_other("/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(source.https));
    response
}
