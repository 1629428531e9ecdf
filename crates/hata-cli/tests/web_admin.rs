//! The web UI's administration pages in a real browser (Debian's headless Chromium through
//! chromedriver, against the real `hata serve`): an administrator creates a segment (a
//! validation error shown next to its field with the input kept, a stale form shown as a
//! conflict), an environment (then protected and not), a token (its secret shown once and
//! never again; rotated, the old secret refused by OFREP and the new one accepted; one due
//! for rotation flagged), adds a member with a role, creates a user, and reads the audit log
//! with those changes and the chain verified. A viewer sees no write controls on these pages,
//! and forged form posts are refused and change nothing. axe-core on every page (no serious
//! or critical violation) and a label on every input.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`tests/web/install.sh`): skipped without
//! them, except under `CI=true`, where that fails.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::time::Duration;

use browser::*;
use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{secrets, Replica};

const ANN_PASSWORD: &str = "ann's long enough password 1";
const VIC_PASSWORD: &str = "vic's long enough password 2";
const OLGA_PASSWORD: &str = "olga's long enough password 3";
const PAT_PASSWORD: &str = "pat's long enough password 4";

/// Every visible input, select and text area of the page has a label (a `<label>`, or an
/// `aria-label`).
async fn assert_labelled(c: &Client, page: &str) {
    let unlabelled = c
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                .map(e => e.outerHTML);",
            vec![],
        )
        .await
        .expect("look for inputs");
    assert_eq!(unlabelled, json!([]), "inputs without a label on {page}");
}

/// axe-core and the labels check.
async fn check_page(c: &Client, axe_source: &str, page: &str) {
    axe(c, axe_source, page).await;
    assert_labelled(c, page).await;
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn value_of(c: &Client, css: &str) -> String {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// Waits until the input at `css` holds `want` (on the page a navigation brings).
async fn wait_for_value(c: &Client, css: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.prop("value").await.ok().flatten().unwrap_or_default();
            if last == want {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never held {want:?} (last {last:?})");
}

async fn select(c: &Client, css: &str, value: &str) {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.expect("find").len()
}

/// Posts a form the page does not offer, with the session's CSRF token taken from the page
/// (the logout form has it): what a user could forge.
async fn forge(c: &Client, action: &str, fields: &[(&str, &str)]) {
    let fields: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
    c.execute(
        "const [action, fields] = arguments;
         const csrf = document.querySelector('input[name=csrf]').value;
         const f = document.createElement('form');
         f.method = 'post';
         f.action = action;
         for (const [k, v] of [['csrf', csrf], ...fields]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
           f.appendChild(i);
         }
         document.body.appendChild(f);
         f.submit();",
        vec![json!(action), json!(fields)],
    )
    .await
    .expect("forge a post");
    wait_for_text(c, "h1", "Not allowed").await;
}

/// OFREP's answer status for `token`, until it is `want` (a rotated-out secret stops working
/// at the time the rotation set, a second after it).
async fn ofrep_until(r: &Replica, token: &str, want: StatusCode) {
    let mut last = None;
    for _ in 0..100 {
        let (status, _) = r.ofrep(token, "checkout").await.expect("OFREP");
        if status == want {
            return;
        }
        last = Some(status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("OFREP never answered {want} (last {last:?})");
}

#[tokio::test]
async fn the_administration_pages_in_chromium() {
    let Some((chromium, chromedriver, axe_source)) = tools() else {
        return;
    };
    let (r, _dir) = shop_project("web-admin").await;
    r.admin_ok(
        Method::POST,
        "/projects/shop/flags",
        Some(
            json!({"key": "checkout", "name": "Checkout", "type": "boolean",
            "environments": {"development": {"enabled": true, "default": {"variant": "on"}}}}),
        ),
        StatusCode::CREATED,
    )
    .await;
    let mut ids = std::collections::HashMap::new();
    for (email, password, admin) in [
        ("ann@example.com", ANN_PASSWORD, true),
        ("vic@example.com", VIC_PASSWORD, false),
        ("olga@example.com", OLGA_PASSWORD, false),
    ] {
        let user = r
            .admin_ok(
                Method::POST,
                "/users",
                Some(json!({"email": email, "password": password, "admin": admin})),
                StatusCode::CREATED,
            )
            .await;
        ids.insert(email, user["id"].as_str().expect("id").to_string());
    }
    r.admin_ok(
        Method::PUT,
        &format!("/projects/shop/members/{}", ids["vic@example.com"]),
        Some(json!({"role": "viewer"})),
        StatusCode::OK,
    )
    .await;
    // A token that stops working in three days: due for rotation.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let due = r
        .admin_ok(
            Method::POST,
            "/tokens",
            Some(
                json!({"name": "old-ci", "kind": "client", "project": "shop",
                "environment": "development", "expires_at": soon}),
            ),
            StatusCode::CREATED,
        )
        .await;
    secrets::remember(due["secret"].as_str().expect("secret"));
    let due_id = due["id"].as_str().expect("id").to_string();
    let driver = start_driver(&chromedriver).await;
    let base = r.base.clone();

    // --- an administrator ------------------------------------------------------------------
    let c = browser(&driver, &chromium, "en", false).await;
    sign_in(&c, &base, "ann@example.com", ANN_PASSWORD).await;
    wait_for_path(&c, "/projects").await;

    // Segments: the list, then a new one with a mistake.
    c.goto(&format!("{base}/projects/shop/segments"))
        .await
        .expect("segments");
    check_page(&c, &axe_source, "segments list (empty)").await;
    click(&c, "#new-segment").await;
    wait_for_path(&c, "/projects/shop/segments/_new").await;
    check_page(&c, &axe_source, "new segment").await;
    fill(&c, "#f-key", "beta-testers").await;
    fill(&c, "#f-name", "Beta testers").await;
    fill(&c, "#f-included", "user-1\nuser-2").await;
    fill(&c, "#c0-attribute", "country").await;
    select(&c, "#c0-operator", "in").await;
    fill(&c, "#c0-values", "jp\nus").await;
    fill(&c, "#c1-attribute", "age").await;
    select(&c, "#c1-operator", "gte").await;
    fill(&c, "#c1-values", "eighteen").await;
    click(&c, "#save").await;
    // The store's message, next to the field it names; everything typed is still there.
    let error = text_of(&c, "#c1-values-error").await;
    assert!(error.contains("must be a number"), "{error}");
    let invalid = c
        .find(Locator::Css("#c1-values"))
        .await
        .expect("values")
        .attr("aria-invalid")
        .await
        .expect("attr");
    assert_eq!(invalid.as_deref(), Some("true"));
    assert_eq!(value_of(&c, "#f-key").await, "beta-testers");
    assert_eq!(value_of(&c, "#f-included").await, "user-1\nuser-2");
    assert_eq!(value_of(&c, "#c0-values").await, "jp\nus");
    assert_eq!(value_of(&c, "#c1-values").await, "eighteen");
    check_page(&c, &axe_source, "new segment, with an error").await;
    fill(&c, "#c1-values", "18").await;
    click(&c, "#save").await;
    wait_for_path(&c, "/projects/shop/segments/beta-testers").await;
    text_of(&c, "#saved").await;
    check_page(&c, &axe_source, "segment").await;
    screenshot(&c, "segment-en-light.png").await;
    let segment = r
        .admin_ok(
            Method::GET,
            "/projects/shop/segments/beta-testers",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(segment["included"], json!(["user-1", "user-2"]));
    assert_eq!(
        segment["rules"],
        json!([[
            {"attribute": "country", "operator": "in", "values": ["jp", "us"]},
            {"attribute": "age", "operator": "gte", "values": [18]},
        ]])
    );
    // Someone else changes it meanwhile: saving this page is a conflict, nothing lost.
    let mut changed = segment.clone();
    changed["name"] = json!("Changed elsewhere");
    let version = segment["version"].as_i64().expect("version");
    let resp = r
        .client
        .put(format!("{base}/api/v1/projects/shop/segments/beta-testers"))
        .bearer_auth(support::ADMIN_TOKEN)
        .header("if-match", format!("\"{version}\""))
        .json(&changed)
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::OK);
    fill(&c, "#f-name", "Beta testers (edited)").await;
    click(&c, "#save").await;
    c.wait()
        .for_element(Locator::Css("#form-problems #reload"))
        .await
        .expect("a conflict, with a way to reload");
    assert_eq!(value_of(&c, "#f-name").await, "Beta testers (edited)");
    click(&c, "#reload").await;
    wait_for_value(&c, "#f-name", "Changed elsewhere").await;
    c.goto(&format!("{base}/projects/shop/segments"))
        .await
        .expect("segments");
    assert_eq!(count(&c, "tr[data-segment='beta-testers']").await, 1);
    check_page(&c, &axe_source, "segments list").await;

    // Environments: a new protected one, then not protected.
    c.goto(&format!("{base}/projects/shop/environments"))
        .await
        .expect("environments");
    check_page(&c, &axe_source, "environments").await;
    fill(&c, "#f-key", "staging").await;
    fill(&c, "#f-name", "Staging").await;
    click(&c, "#f-protected").await;
    click(&c, "#create").await;
    text_of(&c, "#done").await;
    assert_eq!(
        count(&c, "tr[data-environment='staging'] .tag.protected").await,
        1
    );
    click(
        &c,
        "tr[data-environment='staging'] form[action$='/protection'] button",
    )
    .await;
    wait_for_text(
        &c,
        "tr[data-environment='staging'] td:nth-child(4) .switch > span",
        "not protected",
    )
    .await;
    let staging = r
        .admin_ok(
            Method::GET,
            "/projects/shop/environments/staging",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(staging["protected"], json!(false));

    // Tokens: the one due for rotation is flagged.
    c.goto(&format!("{base}/tokens")).await.expect("tokens");
    check_page(&c, &axe_source, "tokens").await;
    screenshot(&c, "tokens-en-light.png").await;
    text_of(&c, "#due-warning").await;
    assert_eq!(
        count(&c, &format!("tr[data-token='{due_id}'] .tag.warn")).await,
        1,
        "due for rotation"
    );
    // A new server token: its secret once.
    fill(&c, "#f-name", "web-test").await;
    select(&c, "#f-kind", "server").await;
    select(&c, "#f-project", "shop").await;
    fill(&c, "#f-environment", "development").await;
    click(&c, "#create").await;
    let secret = text_of(&c, "#secret").await;
    secrets::remember(&secret);
    assert!(secret.len() > 20, "a secret: {secret}");
    let token_id = text_of(&c, "#token-id").await;
    check_page(&c, &axe_source, "token created").await;
    assert_eq!(evaluate(&r, &secret, "checkout").await, json!(true));
    c.goto(&format!("{base}/tokens")).await.expect("tokens");
    assert_eq!(count(&c, &format!("tr[data-token='{token_id}']")).await, 1);
    let source = c.source().await.expect("source");
    assert!(!source.contains(&secret), "the secret is never shown again");
    c.refresh().await.expect("reload");
    let source = c.source().await.expect("source");
    assert!(!source.contains(&secret), "not on reload either");
    // Rotated, the old secret stopping at once: OFREP refuses it and takes the new one.
    select(
        &c,
        &format!("tr[data-token='{token_id}'] select[name=grace]"),
        "now",
    )
    .await;
    click(
        &c,
        &format!("tr[data-token='{token_id}'] form[action$='/rotate'] button"),
    )
    .await;
    wait_for_text(&c, "h1", "Token rotated").await;
    let rotated = text_of(&c, "#secret").await;
    secrets::remember(&rotated);
    assert_ne!(rotated, secret);
    check_page(&c, &axe_source, "token rotated").await;
    assert_eq!(evaluate(&r, &rotated, "checkout").await, json!(true));
    ofrep_until(&r, &secret, StatusCode::UNAUTHORIZED).await;
    assert_eq!(evaluate(&r, &rotated, "checkout").await, json!(true));
    // Revoked, after a confirmation.
    c.goto(&format!("{base}/tokens")).await.expect("tokens");
    click(
        &c,
        &format!("tr[data-token='{due_id}'] form[action$='/revoke'] button"),
    )
    .await;
    text_of(&c, "#confirm-question").await;
    check_page(&c, &axe_source, "revoke confirmation").await;
    click(&c, "#confirm").await;
    text_of(&c, "#done").await;
    assert_eq!(count(&c, &format!("tr[data-token='{due_id}']")).await, 0);

    // Members: olga becomes an editor.
    c.goto(&format!("{base}/projects/shop/members"))
        .await
        .expect("members");
    check_page(&c, &axe_source, "members").await;
    select(&c, "#f-user_id", &ids["olga@example.com"]).await;
    select(&c, "#f-role", "editor").await;
    click(&c, "#add").await;
    text_of(&c, "#done").await;
    let role = text_of(&c, "tr[data-member='olga@example.com'] td:nth-child(3)").await;
    assert!(role.starts_with("editor"), "{role}");
    let members = r
        .admin_ok(Method::GET, "/projects/shop/members", None, StatusCode::OK)
        .await;
    let olga = members["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["email"] == json!("olga@example.com"))
        .cloned()
        .expect("olga is a member");
    assert_eq!(olga["role"], json!("editor"));

    // Users: a short password is refused next to its field, the email kept.
    c.goto(&format!("{base}/users")).await.expect("users");
    check_page(&c, &axe_source, "users").await;
    fill(&c, "#f-email", "pat@example.com").await;
    fill(&c, "#f-password", "short").await;
    click(&c, "#create").await;
    text_of(&c, "#f-password-error").await;
    assert_eq!(value_of(&c, "#f-email").await, "pat@example.com");
    assert_eq!(
        value_of(&c, "#f-password").await,
        "",
        "a password is never sent back"
    );
    check_page(&c, &axe_source, "users, with an error").await;
    fill(&c, "#f-password", PAT_PASSWORD).await;
    click(&c, "#create").await;
    text_of(&c, "#done").await;
    assert_eq!(count(&c, "tr[data-user='pat@example.com']").await, 1);

    // The audit log: those changes, and the chain verified.
    c.goto(&format!("{base}/audit")).await.expect("audit");
    check_page(&c, &axe_source, "audit log").await;
    for resource in [
        "segment:beta-testers".to_string(),
        "environment:staging".to_string(),
        format!("token:{token_id}"),
    ] {
        assert!(
            count(&c, &format!("#audit tr[data-resource='{resource}']")).await >= 1,
            "the log shows {resource}"
        );
    }
    assert!(count(&c, "#audit tr[data-resource^='member:']").await >= 1);
    click(&c, "#verify").await;
    let status = text_of(&c, "#chain-status").await;
    assert!(status.starts_with("The chain is intact"), "{status}");
    check_page(&c, &axe_source, "audit log, verified").await;
    screenshot(&c, "audit-en-light.png").await;
    select(&c, "#f-resource_type", "segment").await;
    click(&c, "#audit-filters button[type=submit]").await;
    wait_for_path(&c, "/audit").await;
    let mut resources = json!(null);
    for _ in 0..100 {
        if c.current_url()
            .await
            .expect("url")
            .query()
            .is_some_and(|q| q.contains("resource_type=segment"))
        {
            resources = c
                .execute(
                    "return [...document.querySelectorAll('#audit tr[data-resource]')].map(e => e.dataset.resource);",
                    vec![],
                )
                .await
                .expect("resources");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resources = resources.as_array().expect("the filtered page").clone();
    assert!(!resources.is_empty());
    assert!(
        resources
            .iter()
            .all(|r| r.as_str().is_some_and(|r| r.starts_with("segment:"))),
        "{resources:?}"
    );
    // A bad time is the API's 422, next to its field.
    c.goto(&format!("{base}/audit?from=yesterday"))
        .await
        .expect("audit");
    text_of(&c, "#f-from-error").await;
    c.close().await.expect("close");

    // --- a viewer: no write controls; forged posts refused ----------------------------------
    let c = browser(&driver, &chromium, "en", false).await;
    sign_in(&c, &base, "vic@example.com", VIC_PASSWORD).await;
    wait_for_path(&c, "/projects").await;
    for page in [
        "/projects/shop/segments",
        "/projects/shop/segments/beta-testers",
        "/projects/shop/environments",
        "/projects/shop/members",
        "/tokens",
    ] {
        c.goto(&format!("{base}{page}")).await.expect(page);
        c.wait()
            .for_element(Locator::Css("main h1"))
            .await
            .expect("a page");
        assert_eq!(
            count(&c, "main form[method=post], #new-segment").await,
            0,
            "a viewer sees no write control on {page}"
        );
        check_page(&c, &axe_source, &format!("{page} (viewer)")).await;
    }
    for page in ["/users", "/audit"] {
        c.goto(&format!("{base}{page}")).await.expect(page);
        wait_for_text(&c, "h1", "Not allowed").await;
    }
    c.goto(&format!("{base}/projects/shop/segments"))
        .await
        .expect("segments");
    forge(
        &c,
        "/projects/shop/segments",
        &[("key", "forged"), ("rows", "0")],
    )
    .await;
    r.admin_ok(
        Method::GET,
        "/projects/shop/segments/forged",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    c.goto(&format!("{base}/projects/shop/environments"))
        .await
        .expect("environments");
    forge(
        &c,
        "/projects/shop/environments/production/protection",
        &[("protected", "false"), ("version", "1")],
    )
    .await;
    let production = r
        .admin_ok(
            Method::GET,
            "/projects/shop/environments/production",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(production["protected"], json!(true), "unchanged");
    c.goto(&format!("{base}/tokens")).await.expect("tokens");
    forge(
        &c,
        &format!("/tokens/{token_id}/rotate"),
        &[("grace", "now")],
    )
    .await;
    assert_eq!(evaluate(&r, &rotated, "checkout").await, json!(true));
    c.goto(&format!("{base}/projects/shop/members"))
        .await
        .expect("members");
    forge(
        &c,
        &format!("/projects/shop/members/{}", ids["vic@example.com"]),
        &[("role", "owner")],
    )
    .await;
    let vic = r
        .admin_ok(
            Method::GET,
            &format!("/users/{}", ids["vic@example.com"]),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(vic["projects"]["shop"], json!("viewer"), "still a viewer");
    c.close().await.expect("close");

    // --- Japanese ---------------------------------------------------------------------------
    let c = browser(&driver, &chromium, "ja", false).await;
    sign_in(&c, &base, "ann@example.com", ANN_PASSWORD).await;
    wait_for_path(&c, "/projects").await;
    c.goto(&format!("{base}/audit")).await.expect("audit");
    wait_for_text(&c, "main h1", "監査ログ").await;
    check_page(&c, &axe_source, "audit log (ja)").await;
    screenshot(&c, "audit-ja-light.png").await;
    c.goto(&format!("{base}/projects/shop/segments/_new"))
        .await
        .expect("new segment");
    wait_for_text(&c, "main h1", "新しいセグメント").await;
    check_page(&c, &axe_source, "new segment (ja)").await;
    c.close().await.expect("close");
}
