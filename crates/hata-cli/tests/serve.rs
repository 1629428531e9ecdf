//! `hata serve` as a user runs it: the real binary, a data dir, SIGTERM, a restart on the same
//! dir, the admin token from a file or from `HATA_ADMIN_TOKEN`, HTTPS with a certificate
//! reloaded on SIGHUP, and `--help`.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::tls::{handshake, ServerCert, TestCa};
use support::{free_port, DEADLINE};

/// A running `hata serve`; killed if the test ends without stopping it.
struct Hata {
    child: Child,
    base: String,
    /// One client for every request, so an idle keep-alive connection is open at SIGTERM.
    client: reqwest::Client,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Hata {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        support::secrets::show_log("hata serve stdout", &read(&self.stdout));
        support::secrets::show_log("hata serve stderr", &read(&self.stderr));
    }
}

/// `hata <args>` with no `HATA_*` variables but `env`; output goes to files in `logs`.
fn hata(
    args: &[&str],
    env: &[(&str, &str)],
    logs: &Path,
    run: &str,
) -> (Command, PathBuf, PathBuf) {
    support::secrets::remember_env(env);
    let mut cmd = support::hata(args, env);
    let stdout = logs.join(format!("{run}.stdout"));
    let stderr = logs.join(format!("{run}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"));
    (cmd, stdout, stderr)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Hata {
    /// Starts `hata serve` on `data_dir` and a free port; returns once `/health/ready` is 200.
    async fn start(data_dir: &Path, env: &[(&str, &str)], logs: &Path, run: &str) -> Hata {
        Hata::start_with(data_dir, &[], env, logs, run, None, None).await
    }

    /// Starts `hata serve` with `args` besides the data dir and address; over HTTPS when a
    /// `ca` is given, whose client then makes every request; given a `umask`, under it (set
    /// by `sh`, which then `exec`s hata: the same process).
    async fn start_with(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        logs: &Path,
        run: &str,
        umask: Option<&str>,
        ca: Option<&TestCa>,
    ) -> Hata {
        let listen = format!("127.0.0.1:{}", free_port());
        let data = data_dir.to_str().expect("utf-8 temp path");
        let mut all = vec!["serve", "--data-dir", data, "--listen", &listen];
        all.extend(args);
        let (mut cmd, stdout, stderr) = hata(&all, env, logs, run);
        if let Some(mask) = umask {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("umask {mask} && exec \"$@\""))
                .arg("sh")
                .arg(cmd.get_program())
                .args(cmd.get_args());
            for (name, value) in cmd.get_envs() {
                match value {
                    Some(value) => sh.env(name, value),
                    None => sh.env_remove(name),
                };
            }
            sh.stdin(Stdio::null())
                .stdout(File::create(&stdout).expect("stdout file"))
                .stderr(File::create(&stderr).expect("stderr file"));
            cmd = sh;
        }
        let child = cmd.spawn().expect("spawn hata serve");
        let (scheme, client) = match ca {
            Some(ca) => ("https", ca.client()),
            None => ("http", reqwest::Client::new()),
        };
        let mut hata = Hata {
            child,
            base: format!("{scheme}://{listen}"),
            client,
            stdout,
            stderr,
        };
        hata.wait_ready().await;
        hata
    }

    fn addr(&self) -> std::net::SocketAddr {
        let (_, addr) = self.base.split_once("://").expect("scheme");
        addr.parse().expect("address")
    }

    /// Sends `signal` (e.g. `-HUP`) to the process.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal} failed");
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "hata exited with {status} before it was ready:\n{}",
                    read(&self.stderr)
                );
            }
            if let Ok(r) = self
                .client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
            {
                if r.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "not ready in time:\n{}",
                read(&self.stderr)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit.
    async fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for hata") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hata did not exit within 10 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::StatusCode {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request").status()
    }

    async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::StatusCode {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
            .status()
    }
}

#[tokio::test]
async fn generated_admin_token_sigterm_and_restart_on_the_same_dir() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let mut hata = Hata::start(&data, &[], tmp.path(), "first").await;

    let token_file = data.join("admin-token");
    let token = read(&token_file).trim().to_string();
    assert!(token.starts_with("hata_admin_"), "{token:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "admin-token mode is {:o}",
            mode & 0o777
        );
    }
    assert!(
        read(&hata.stdout).contains(&token),
        "the token is printed once"
    );
    assert!(data.join("hata.db").exists());

    assert_eq!(hata.get("/api/v1/projects", Some(&token)).await, 200);
    assert_eq!(hata.get("/api/v1/projects", None).await, 401);
    assert_eq!(
        hata.get("/api/v1/projects", Some("hata_admin_wrong")).await,
        401
    );
    let created = hata
        .post(
            "/api/v1/projects",
            &token,
            serde_json::json!({"key": "shop"}),
        )
        .await;
    assert_eq!(created, 201);

    let started = Instant::now();
    let status = hata.terminate().await;
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        read(&hata.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // Same dir: same store, same token, no new token generated or printed.
    let mut again = Hata::start(&data, &[], tmp.path(), "second").await;
    assert_eq!(read(&token_file).trim(), token, "the token file is kept");
    assert!(
        !read(&again.stdout).contains("hata_admin_"),
        "{}",
        read(&again.stdout)
    );
    assert_eq!(again.get("/api/v1/projects/shop", Some(&token)).await, 200);
    let status = again.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn hata_admin_token_is_the_first_admin_token() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let secret = "my-own-admin-token-0123456789";
    let mut hata = Hata::start(&data, &[("HATA_ADMIN_TOKEN", secret)], tmp.path(), "env").await;
    assert_eq!(hata.get("/api/v1/projects", Some(secret)).await, 200);
    assert_eq!(
        hata.get("/api/v1/projects", Some("my-own-admin-token-x"))
            .await,
        401
    );
    assert!(
        !data.join("admin-token").exists(),
        "no token file when the token was given"
    );
    assert!(
        !read(&hata.stdout).contains(secret),
        "a given token is not printed"
    );
    assert!(hata.terminate().await.success());

    // Only read on the first start: another value later changes nothing.
    let mut hata = Hata::start(
        &data,
        &[("HATA_ADMIN_TOKEN", "a-different-token-0123456789")],
        tmp.path(),
        "env-again",
    )
    .await;
    assert_eq!(hata.get("/api/v1/projects", Some(secret)).await, 200);
    assert_eq!(
        hata.get("/api/v1/projects", Some("a-different-token-0123456789"))
            .await,
        401
    );
    assert!(hata.terminate().await.success());
}

#[test]
fn bad_settings_fail_the_start_naming_the_setting() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let data = data.to_str().expect("utf-8 temp path");
    let listen = format!("127.0.0.1:{}", free_port());
    for (run, args, env, needle) in [
        (
            "short-token",
            vec![],
            vec![("HATA_ADMIN_TOKEN", "short")],
            "HATA_ADMIN_TOKEN",
        ),
        (
            "body-limit",
            vec!["--body-limit", "10"],
            vec![],
            "body_limit",
        ),
        (
            "log-format",
            vec![],
            vec![("HATA_LOG_FORMAT", "xml")],
            "log_format",
        ),
        (
            "db-connections",
            vec!["--db-max-connections", "0"],
            vec![],
            "db_max_connections",
        ),
        (
            "sqlite-synchronous-flag",
            vec!["--sqlite-synchronous", "sometimes"],
            vec![],
            "sqlite_synchronous (HATA_SQLITE_SYNCHRONOUS) must be normal or full, got \"sometimes\"",
        ),
        (
            "sqlite-synchronous-env",
            vec![],
            vec![("HATA_SQLITE_SYNCHRONOUS", "FULL")],
            "sqlite_synchronous (HATA_SQLITE_SYNCHRONOUS) must be normal or full, got \"FULL\"",
        ),
        // One of the pair without the other.
        (
            "tls-cert-alone",
            vec!["--tls-cert", "cert.pem"],
            vec![],
            "tls_key",
        ),
        (
            "tls-key-alone",
            vec![],
            vec![("HATA_TLS_KEY", "key.pem")],
            "tls_cert",
        ),
    ] {
        let mut all = vec!["serve", "--data-dir", data, "--listen", &listen];
        all.extend(args);
        let (mut cmd, _, stderr) = hata(&all, &env, tmp.path(), run);
        let status = cmd.status().expect("run hata");
        assert!(!status.success(), "{run}: started anyway");
        assert!(read(&stderr).contains(needle), "{run}: {}", read(&stderr));
    }
}

#[test]
fn serve_help_mentions_every_setting() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (mut cmd, stdout, _) = hata(&["serve", "--help"], &[], tmp.path(), "help");
    assert!(cmd.status().expect("run hata").success());
    let help = read(&stdout);
    for setting in [
        "--listen",
        "HATA_LISTEN",
        "--data-dir",
        "HATA_DATA_DIR",
        "--database-url",
        "HATA_DATABASE_URL",
        "--body-limit",
        "HATA_BODY_LIMIT",
        "--db-max-connections",
        "HATA_DB_MAX_CONNECTIONS",
        "--sqlite-synchronous",
        "HATA_SQLITE_SYNCHRONOUS",
        "--log-format",
        "HATA_LOG_FORMAT",
        "--config",
        "HATA_CONFIG",
        "--tls-cert",
        "HATA_TLS_CERT",
        "--tls-key",
        "HATA_TLS_KEY",
        "HATA_ADMIN_TOKEN",
        "RUST_LOG",
    ] {
        assert!(
            help.contains(setting),
            "`hata serve --help` does not mention {setting}:\n{help}"
        );
    }
}

/// A start that cannot serve (port in use, a bad HATA_ADMIN_TOKEN, a certificate or key that
/// cannot be used) fails before it creates, migrates or bootstraps anything: the data
/// directory is not even made.
#[test]
fn a_failed_start_touches_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 temp path");
    let listen = format!("127.0.0.1:{port}");
    // A good certificate; a key file that holds no key; the key of another certificate; a
    // certificate file that is not there.
    let ca = TestCa::new("hata test CA");
    let (cert, key) = ca.server_cert("hata-test", 1).write(dir.path());
    let (cert, key) = (
        cert.to_str().expect("utf-8 temp path"),
        key.to_str().expect("utf-8 temp path"),
    );
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let not_a_key = not_a_key.to_str().expect("utf-8 temp path");
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, ca.server_cert("other", 2).key_pem).expect("write");
    let other_key = other_key.to_str().expect("utf-8 temp path");
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("utf-8 temp path");
    // (arguments, environment, what the error names)
    type Case<'a> = (Vec<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let serve = ["serve", "--data-dir", data_arg, "--listen", "127.0.0.1:0"];
    let tls = |cert, key| [&serve[..], &["--tls-cert", cert, "--tls-key", key]].concat();
    let cases: Vec<Case> = vec![
        (
            vec!["serve", "--data-dir", data_arg, "--listen", &listen],
            &[],
            "listen",
        ),
        (
            serve.to_vec(),
            &[("HATA_ADMIN_TOKEN", "short")],
            "HATA_ADMIN_TOKEN",
        ),
        (tls(cert, not_a_key), &[], "tls_key"),
        (tls(cert, other_key), &[], "tls_key"),
        (tls(missing, key), &[], "tls_cert"),
    ];
    for (args, env, names) in cases {
        let out = support::hata(&args, env)
            .stdin(Stdio::null())
            .output()
            .expect("run hata serve");
        assert!(!out.status.success(), "{names}: started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{names}: {stderr}");
        assert!(!data.exists(), "{names}: the data directory was created");
    }
    drop(taken);
}

/// The mode of `path`'s permission bits.
#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory and the SQLite files hold token hashes and the ticket signing key: they
/// are the owner's alone (0700, 0600), even under a umask that takes nothing away, and files
/// an older hata made readable are narrowed at the next start. `--sqlite-synchronous` reaches
/// every connection, and a TOML `sqlite_synchronous` with a bad value stops the start.
#[cfg(unix)]
#[tokio::test]
async fn data_files_are_private_and_sqlite_synchronous_is_applied() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let parent = tmp.path().join("state");
    let data = parent.join("data");
    let db = data.join("hata.db");
    let files = |db: &Path| {
        ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
    };

    let mut hata = Hata::start_with(
        &data,
        &["--sqlite-synchronous", "full"],
        &[],
        tmp.path(),
        "full",
        Some("000"),
        None,
    )
    .await;
    assert_eq!(mode(&parent), 0o700, "a missing parent is made private too");
    assert_eq!(mode(&data), 0o700, "data dir");
    for file in files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&data.join("admin-token")), 0o600);
    // Logs go to stdout.
    let log = read(&hata.stdout);
    assert!(log.contains("synchronous = 2"), "{log}");
    assert!(hata.terminate().await.success());

    // An older hata left the files readable by everyone; the default is NORMAL (1).
    for file in files(&db).iter().filter(|f| f.exists()) {
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
    }
    let mut hata = Hata::start_with(&data, &[], &[], tmp.path(), "normal", None, None).await;
    for file in files(&db) {
        assert_eq!(mode(&file), 0o600, "{} after a restart", file.display());
    }
    let log = read(&hata.stdout);
    assert!(log.contains("synchronous = 1"), "{log}");
    assert!(hata.terminate().await.success());

    let toml = tmp.path().join("hata.toml");
    std::fs::write(&toml, "sqlite_synchronous = \"off\"\n").expect("write toml");
    let listen = format!("127.0.0.1:{}", free_port());
    let out = support::hata(
        &[
            "serve",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--listen",
            &listen,
            "--config",
            toml.to_str().expect("utf-8"),
        ],
        &[],
    )
    .stdin(Stdio::null())
    .output()
    .expect("run hata serve");
    assert!(
        !out.status.success(),
        "started with sqlite_synchronous = off"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sqlite_synchronous (HATA_SQLITE_SYNCHRONOUS) must be normal or full"),
        "{stderr}"
    );
}

/// HTTPS from the binary: HSTS, and the certificate replaced on SIGHUP (and on its own when
/// the files change, which `connections.rs` covers in-process) without a restart. SIGHUP
/// does not end the process, as it would by default.
#[tokio::test]
async fn https_with_a_certificate_reloaded_on_sighup() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("hata test CA");
    let first = ca.server_cert("hata-first", 1);
    let (cert, key) = first.write(tmp.path());
    let (cert, key) = (
        cert.to_str().expect("utf-8 temp path").to_string(),
        key.to_str().expect("utf-8 temp path").to_string(),
    );
    let mut hata = Hata::start_with(
        &tmp.path().join("data"),
        &["--tls-cert", &cert],
        &[("HATA_TLS_KEY", &key)],
        tmp.path(),
        "tls",
        None,
        Some(&ca),
    )
    .await;
    let live = hata
        .client
        .get(format!("{}/health/live", hata.base))
        .send()
        .await
        .expect("request");
    assert_eq!(live.status(), reqwest::StatusCode::OK);
    assert_eq!(live.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        live.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    let (_, presented) = handshake(hata.addr(), &ca).await;
    assert_eq!(presented, first.der);

    // SIGHUP with the files unchanged: reloaded all the same, and the process lives on.
    hata.signal("-HUP");
    wait_for_log(&hata, |log| {
        log.contains("TLS certificate reloaded") && log.contains("SIGHUP")
    })
    .await;
    assert!(
        matches!(hata.child.try_wait(), Ok(None)),
        "SIGHUP ended hata"
    );

    // New files and SIGHUP: new connections get the new certificate.
    let second = ca.server_cert("hata-second", 2);
    second.write(tmp.path());
    hata.signal("-HUP");
    wait_for_certificate(&hata, &ca, &second).await;
    assert_eq!(hata.get("/health/live", None).await, 200);
    let status = hata.terminate().await;
    assert!(status.success(), "{status}\n{}", read(&hata.stderr));
}

async fn wait_for_log(hata: &Hata, seen: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The log is on stdout.
        if seen(&read(&hata.stdout)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not in the log after 10 s:\n{}",
            read(&hata.stdout)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_certificate(hata: &Hata, ca: &TestCa, cert: &ServerCert) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, presented) = handshake(hata.addr(), ca).await;
        if presented == cert.der {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served after 10 s:\n{}",
            read(&hata.stdout)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
