//! No log of the whole test run carries a secret the run used: a password, an API token, a
//! session id, a CSRF token, a TOTP seed or URI, a recovery code or a JWT.
//!
//! Ignored in a plain run: it reads what the rest of the suite left behind, so `.ci/run`
//! runs it after the suite (`--run-ignored only`), given
//! - `HATA_TEST_SECRETS_FILE`: every secret the test helpers sent or received
//!   (`support::secrets`), one per line;
//! - `HATA_TEST_JUNIT`: nextest's JUnit report of the `ci` profile, which keeps the captured
//!   output of every test, passing ones too: in-process servers' `tracing` output at debug
//!   level for hata's crates, and the log of every `hata serve` a test started.

mod support;

use aho_corasick::AhoCorasick;

use support::secrets::{MIN_SECRET_LEN, SECRETS_FILE_VAR};

/// Fewer secrets or less output than this means the collection did not run, not that the
/// run was clean: the suite uses thousands of secrets and logs megabytes.
const MIN_SECRETS: usize = 200;
const MIN_OUTPUT_BYTES: usize = 1_000_000;

/// A secret found in the report: the test whose output holds it, and the secret masked (the
/// search must not print what it looks for).
#[derive(Debug, PartialEq)]
struct Leak {
    test: String,
    masked: String,
}

/// The report's text with the five XML entities decoded, so secrets holding `&`, `<`, `>`
/// or quotes are found as written.
fn unescape_xml(xml: &str) -> String {
    xml.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The name of the test case whose element holds byte `at` of the report.
fn test_at(report: &str, at: usize) -> String {
    let before = &report[..at];
    before
        .rfind("<testcase name=\"")
        .map(|start| {
            let rest = &before[start + "<testcase name=\"".len()..];
            rest.split('"').next().unwrap_or("?").to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn mask(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}… ({} characters)", secret.chars().count())
}

/// Every secret found in `report`, once per secret and test.
fn leaks(report: &str, secrets: &[String]) -> Vec<Leak> {
    let text = unescape_xml(report);
    let searcher = AhoCorasick::new(secrets).expect("build the searcher");
    let mut found: Vec<Leak> = Vec::new();
    for m in searcher.find_overlapping_iter(&text) {
        let leak = Leak {
            test: test_at(&text, m.start()),
            masked: mask(&secrets[m.pattern().as_usize()]),
        };
        if !found.contains(&leak) {
            found.push(leak);
        }
    }
    found
}

fn secrets_of(ledger: &str) -> Vec<String> {
    let mut secrets: Vec<String> = ledger
        .lines()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .map(str::to_string)
        .collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

#[test]
#[ignore = "reads the whole suite's output: .ci/run runs it after the suite"]
fn no_secret_in_the_logs_of_the_test_run() {
    let ledger_path = std::env::var(SECRETS_FILE_VAR).expect("HATA_TEST_SECRETS_FILE");
    let report_path = std::env::var("HATA_TEST_JUNIT").expect("HATA_TEST_JUNIT");
    let ledger = std::fs::read_to_string(&ledger_path).expect("read the secrets file");
    let report = std::fs::read_to_string(&report_path).expect("read the JUnit report");
    let secrets = secrets_of(&ledger);
    assert!(
        secrets.len() >= MIN_SECRETS,
        "only {} secrets were collected in {ledger_path}: is the suite's support code \
         remembering them?",
        secrets.len()
    );
    assert!(
        report.len() >= MIN_OUTPUT_BYTES,
        "{report_path} holds only {} bytes: does the `ci` profile store passing tests' output?",
        report.len()
    );
    let found = leaks(&report, &secrets);
    assert!(
        found.is_empty(),
        "{} secrets appear in the test run's logs (of {} searched):\n{}",
        found.len(),
        secrets.len(),
        found
            .iter()
            .map(|l| format!("  {} in {}", l.masked, l.test))
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "searched {} bytes of output for {} secrets: none found",
        report.len(),
        secrets.len()
    );
}

#[test]
fn the_search_finds_a_secret_in_a_test_output_and_names_the_test() {
    let secrets = secrets_of("hata_srv_0123456789abcdef\nshort\npass & <word> 2026!\n");
    assert_eq!(secrets.len(), 2, "short values are not searched");
    let report = r#"<testsuite><testcase name="clean"><system-out>nothing here</system-out></testcase>
<testcase name="leaky"><system-err>INFO token=hata_srv_0123456789abcdef used</system-err></testcase>
<testcase name="escaped"><system-out>password pass &amp; &lt;word&gt; 2026! in a message</system-out></testcase></testsuite>"#;
    let found = leaks(report, &secrets);
    assert_eq!(
        found,
        vec![
            Leak {
                test: "leaky".into(),
                masked: "hata… (25 characters)".into()
            },
            Leak {
                test: "escaped".into(),
                masked: "pass… (19 characters)".into()
            },
        ]
    );
    assert!(leaks(
        "<testcase name=\"clean\">hata_srv_0123</testcase>",
        &secrets
    )
    .is_empty());
}
