//! Editing flags in the web UI, in a real browser (Debian's headless Chromium through
//! chromedriver, `fantoccini`) against the real `hata serve`: create a flag, add a rule and a
//! 30 % rollout, see who moves before saving, save in a protected environment (confirmed),
//! turn it on there and check through OFREP that evaluations changed; a validation error from
//! hata-core shown next to its field with what was typed kept; a 412 between two browser
//! sessions resolved by re-applying the edits onto the new version. On every new page:
//! axe-core (no serious or critical violation), a label on every input, and actions that are
//! real buttons and links (one of them pressed with the keyboard).
//!
//! Needs `chromium`, `chromedriver` and axe-core (`tests/web/install.sh`): skipped without
//! them, except under `CI=true`, where that fails.

#[path = "support/browser.rs"]
mod browser;
mod support;

use browser::*;
use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{secrets, Replica};

const ANN_PASSWORD: &str = "ann's long enough password 1";
const BOB_PASSWORD: &str = "bob's long enough password 2";

/// Every visible input, select and textarea of the page has a label; every control that acts
/// is a button or a link (nothing clickable that a keyboard cannot reach).
async fn labelled_and_reachable(c: &Client, page: &str) {
    let unlabelled = c
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
               .filter(e => !e.labels || e.labels.length === 0)
               .map(e => e.name || e.outerHTML);",
            vec![],
        )
        .await
        .expect("labels");
    assert_eq!(unlabelled, json!([]), "{page}: inputs without a label");
    let odd = c
        .execute(
            "return [...document.querySelectorAll('[onclick], [tabindex], a:not([href])')]
               .map(e => e.outerHTML);",
            vec![],
        )
        .await
        .expect("controls");
    assert_eq!(
        odd,
        json!([]),
        "{page}: controls that are not buttons or links"
    );
}

async fn check_page(c: &Client, axe_source: &str, page: &str) {
    axe(c, axe_source, page).await;
    labelled_and_reachable(c, page).await;
}

async fn value_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
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

async fn select(c: &Client, name: &str, value: &str) {
    c.find(Locator::Css(&format!("select[name='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .select_by_value(value)
        .await
        .expect("select");
}

async fn fill_named(c: &Client, name: &str, text: &str) {
    fill(c, &format!("[name='{name}']"), text).await;
}

/// OFREP with a context of our own.
async fn ofrep(r: &Replica, token: &str, flag: &str, context: Value) -> Value {
    let response = r
        .client
        .post(format!("{}/ofrep/v1/evaluate/flags/{flag}", r.base))
        .bearer_auth(token)
        .json(&json!({ "context": context }))
        .send()
        .await
        .expect("OFREP");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn editing_flags_in_chromium() {
    let Some((chromium, chromedriver, axe_source)) = tools() else {
        return;
    };
    let (r, _dir) = shop_project("web-edit").await;
    r.admin_ok(
        Method::POST,
        "/projects/shop/segments",
        Some(json!({"key": "beta", "name": "Beta testers", "included": ["user-9", "user-8"]})),
        StatusCode::CREATED,
    )
    .await;
    for (email, password) in [
        ("ann@example.com", ANN_PASSWORD),
        ("bob@example.com", BOB_PASSWORD),
    ] {
        r.admin_ok(
            Method::POST,
            "/users",
            Some(json!({"email": email, "password": password, "admin": true})),
            StatusCode::CREATED,
        )
        .await;
    }
    let mut tokens = Vec::new();
    for env in ["development", "production"] {
        let token = r
            .admin_ok(
                Method::POST,
                "/tokens",
                Some(json!({"name": env, "kind": "server", "project": "shop", "environment": env})),
                StatusCode::CREATED,
            )
            .await["secret"]
            .as_str()
            .expect("secret")
            .to_string();
        secrets::remember(&token);
        tokens.push(token);
    }
    let (dev_token, prod_token) = (&tokens[0], &tokens[1]);
    let driver = start_driver(&chromedriver).await;
    let base = r.base.clone();
    let c = browser(&driver, &chromium, "en", false).await;
    sign_in(&c, &base, "ann@example.com", ANN_PASSWORD).await;
    wait_for_path(&c, "/projects").await;

    // --- create a flag ---------------------------------------------------------------------
    c.goto(&format!("{base}/projects/shop/flags"))
        .await
        .expect("list");
    // A link, followed with the keyboard.
    c.wait()
        .for_element(Locator::Css("a#new-flag"))
        .await
        .expect("the link")
        .send_keys("\u{E007}")
        .await
        .expect("Enter");
    wait_for_path(&c, "/projects/shop/new-flag").await;
    check_page(&c, &axe_source, "create a flag").await;
    fill_named(&c, "key", "new-checkout").await;
    fill_named(&c, "name", "New checkout").await;
    fill_named(&c, "tags", "checkout, web").await;
    fill_named(&c, "owner", "team-shop").await;
    click(&c, "#save").await;
    wait_for_path(&c, "/projects/shop/flags/new-checkout").await;
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/new-checkout",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(flag["tags"], json!(["checkout", "web"]));
    assert_eq!(
        flag["variants"].as_array().map(Vec::len),
        Some(2),
        "on and off"
    );

    // The same key again: the error is next to the key field, and the name typed is kept.
    c.goto(&format!("{base}/projects/shop/new-flag"))
        .await
        .expect("create");
    fill_named(&c, "key", "new-checkout").await;
    fill_named(&c, "name", "Twice").await;
    click(&c, "#save").await;
    c.wait()
        .for_element(Locator::Css(".field-error[data-for='key']"))
        .await
        .expect("the key's error");
    assert_eq!(value_of(&c, "[name='name']").await, "Twice");
    check_page(&c, &axe_source, "create a flag, with an error").await;

    // The flag's own fields.
    c.goto(&format!("{base}/projects/shop/flags/new-checkout"))
        .await
        .expect("flag page");
    click(&c, "a#edit-flag").await;
    wait_for_path(&c, "/projects/shop/flags/new-checkout/edit").await;
    check_page(&c, &axe_source, "edit a flag").await;
    fill_named(&c, "variants[0].name", "The new checkout").await;
    click(&c, "#save").await;
    wait_for_path(&c, "/projects/shop/flags/new-checkout").await;
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/new-checkout",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(flag["variants"][0]["name"], json!("The new checkout"));

    // --- a validation error from hata-core, next to its field, what was typed kept ------------
    let dev_edit = format!("{base}/projects/shop/flags/new-checkout/environments/development/edit");
    c.goto(&dev_edit).await.expect("edit development");
    check_page(&c, &axe_source, "edit a config").await;
    fill_named(&c, "rules[0].conditions[0].attribute", "email").await;
    select(&c, "rules[0].conditions[0].operator", "matches").await;
    fill_named(&c, "rules[0].conditions[0].values", "(unclosed").await;
    select(&c, "rules[0].serve.variant", "on").await;
    click(&c, "#save").await;
    let error = text_of(&c, ".field-error[data-for='rules[0].conditions[0].values']").await;
    assert!(!error.is_empty(), "the regex's error is next to its field");
    assert_eq!(
        value_of(&c, "[name='rules[0].conditions[0].values']").await,
        "(unclosed",
        "what was typed is kept"
    );
    assert_eq!(
        value_of(&c, "[name='rules[0].conditions[0].attribute']").await,
        "email"
    );
    let described = c
        .find(Locator::Css("[name='rules[0].conditions[0].values']"))
        .await
        .expect("values")
        .attr("aria-describedby")
        .await
        .expect("attr");
    assert_eq!(
        described.as_deref(),
        Some("err-rules-0--conditions-0--values")
    );
    check_page(&c, &axe_source, "edit a config, with an error").await;
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/new-checkout",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        flag["environments"]["development"]["rules"],
        json!([]),
        "nothing saved"
    );

    // --- production: a rule and a 30 % rollout; who moves; save (protected: confirmed) -------
    assert_eq!(
        ofrep(
            &r,
            prod_token,
            "new-checkout",
            json!({"targetingKey": "user-1"})
        )
        .await["value"],
        json!(false)
    );
    c.goto(&format!(
        "{base}/projects/shop/flags/new-checkout/environments/production/edit"
    ))
    .await
    .expect("edit production");
    fill_named(&c, "rules[0].description", "Staff first").await;
    fill_named(&c, "rules[0].conditions[0].attribute", "email").await;
    select(&c, "rules[0].conditions[0].operator", "ends_with").await;
    fill_named(&c, "rules[0].conditions[0].values", "@example.com").await;
    select(&c, "rules[0].serve.variant", "on").await;
    select(&c, "default.kind", "rollout").await;
    fill_named(&c, "default.rollout.weights[0].weight", "30").await;
    fill_named(&c, "default.rollout.weights[1].weight", "70").await;
    // Preview, with the keyboard.
    c.find(Locator::Css("#preview"))
        .await
        .expect("preview")
        .send_keys("\u{E007}")
        .await
        .expect("Enter");
    let share = text_of(&c, "#who-moves li[data-place=default] .share").await;
    assert_eq!(
        share, "30% of the subjects it serves would switch variant",
        "the exact share: from off to 30 % on"
    );
    assert!(
        text_of(&c, "#who-moves li[data-place=default]")
            .await
            .contains("off → on: 30%"),
        "the move itself"
    );
    c.find(Locator::Css("#protected-confirm"))
        .await
        .expect("asks to confirm in a protected environment");
    assert_eq!(
        value_of(&c, "[name='default.rollout.weights[0].weight']").await,
        "30",
        "the preview keeps what was typed"
    );
    assert_eq!(text_of(&c, "#save").await, "Confirm and save in Production");
    check_page(&c, &axe_source, "who moves").await;
    screenshot(&c, "edit-config-en-light.png").await;
    // Nothing is saved by a preview.
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/new-checkout",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(flag["environments"]["production"]["rules"], json!([]));
    click(&c, "#save").await;
    wait_for_path(&c, "/projects/shop/flags/new-checkout").await;
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/new-checkout",
            None,
            StatusCode::OK,
        )
        .await;
    let prod = &flag["environments"]["production"];
    assert_eq!(
        prod["rules"][0]["conditions"][0]["values"],
        json!(["@example.com"])
    );
    assert_eq!(
        prod["default"]["rollout"]["weights"],
        json!([{"variant": "on", "weight": 30000}, {"variant": "off", "weight": 70000}])
    );
    assert_eq!(prod["enabled"], json!(false), "still off");

    // Turn it on in production: the flag page's switch, confirmed.
    click(&c, "form[action$='/environments/production/switch'] button").await;
    c.wait()
        .for_element(Locator::Css("#confirm-question"))
        .await
        .expect("asks first");
    click(&c, "#confirm").await;
    wait_for_path(&c, "/projects/shop/flags/new-checkout").await;
    // By then evaluations serve it: the rule for staff, the rollout for the rest
    // (new-checkout/user-1 is bucket 27752, inside the first 30 %).
    let staff = ofrep(
        &r,
        prod_token,
        "new-checkout",
        json!({"targetingKey": "user-5", "email": "kim@example.com"}),
    )
    .await;
    assert_eq!(staff["value"], json!(true));
    assert_eq!(staff["reason"], json!("TARGETING_MATCH"));
    let rolled = ofrep(
        &r,
        prod_token,
        "new-checkout",
        json!({"targetingKey": "user-1"}),
    )
    .await;
    assert_eq!(rolled["value"], json!(true));
    assert_eq!(rolled["reason"], json!("SPLIT"));

    // --- a 412 between two sessions, resolved by re-applying ---------------------------------
    let c2 = browser(&driver, &chromium, "en", false).await;
    sign_in(&c2, &base, "bob@example.com", BOB_PASSWORD).await;
    wait_for_path(&c2, "/projects").await;
    c.goto(&dev_edit).await.expect("ann opens development");
    c2.goto(&dev_edit).await.expect("bob opens development");
    // Bob targets user-9, and saves first.
    select(&c2, "targets[0].variant", "on").await;
    fill_named(&c2, "targets[0].values", "user-9").await;
    click(&c2, "#save").await;
    wait_for_path(&c2, "/projects/shop/flags/new-checkout").await;
    // Ann, on the version she opened, serves `on` by default to the beta segment's rule.
    select(&c, "rules[0].conditions[0].operator", "segment").await;
    select(&c, "rules[0].conditions[0].segment", "beta").await;
    select(&c, "rules[0].serve.variant", "on").await;
    click(&c, "#enabled").await;
    click(&c, "#save").await;
    c.wait()
        .for_element(Locator::Css("#conflict"))
        .await
        .expect("the conflict");
    check_page(&c, &axe_source, "conflict").await;
    assert_eq!(
        value_of(&c, "[name='rules[0].conditions[0].segment']").await,
        "beta",
        "her edits are kept"
    );
    assert!(
        text_of(&c, "#conflict").await.contains("user-9"),
        "the current state shows Bob's change"
    );
    // Bob's targets, which Ann left alone, are merged into her form; nothing both changed.
    assert!(
        text_of(&c, "#merge-kept").await.contains("Targets"),
        "{}",
        text_of(&c, "#merge-kept").await
    );
    assert_eq!(value_of(&c, "[name='targets[0].values']").await, "user-9");
    assert!(c.find(Locator::Css("#merge-both")).await.is_err());
    let version = flag["version"].as_i64().expect("version") + 1;
    assert_eq!(
        text_of(&c, "#save").await,
        format!("Re-apply my changes onto version {}", version + 1)
    );
    click(&c, "#save").await;
    wait_for_path(&c, "/projects/shop/flags/new-checkout").await;
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/new-checkout",
            None,
            StatusCode::OK,
        )
        .await;
    let dev = &flag["environments"]["development"];
    assert_eq!(dev["enabled"], json!(true));
    assert_eq!(dev["rules"][0]["conditions"][0], json!({"segment": "beta"}));
    assert_eq!(
        dev["targets"],
        json!([{"variant": "on", "values": ["user-9"]}]),
        "Bob's edit survived Ann's re-apply"
    );
    let bob_target = ofrep(
        &r,
        dev_token,
        "new-checkout",
        json!({"targetingKey": "user-9"}),
    )
    .await;
    assert_eq!(bob_target["reason"], json!("TARGETING_MATCH"));
    let beta = ofrep(
        &r,
        dev_token,
        "new-checkout",
        json!({"targetingKey": "user-8"}),
    )
    .await;
    assert_eq!(
        beta["value"],
        json!(true),
        "served through the segment rule"
    );
    c2.close().await.expect("close");
    c.close().await.expect("close");
}
