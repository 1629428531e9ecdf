//! The `hata` binary: `serve`, `migrate`, `export`, `import`, `token`, `user`, `audit`,
//! `backup` and `restore`. The only place that uses
//! `anyhow`: errors from the libraries are printed for a human here.

mod audit;
mod backup;
mod backup_jobs;
mod config;
mod report;
mod token;
mod user;

/// mimalloc instead of glibc's malloc. Every change rebuilds rule sets of megabytes (10,000
/// flags: 6.9 MB of SDK JSON per environment plus the compiled snapshot); glibc's arenas kept
/// what they freed (320 MB resident for 60 MB of live data in the 10,000-flag benchmark).
/// mimalloc, told to return freed memory at once (`tune_allocator`), stays near the live
/// size, and is also faster at the many small allocations of a request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Indices into mimalloc's `mi_option_e` (mimalloc 3, bundled with `libmimalloc-sys` 0.1.49,
/// which `Cargo.lock` pins), which that crate has no constants for. The test below checks they
/// still name the options whose defaults mimalloc documents.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

/// Returns freed memory to the system a tenth of a second after it was freed instead of a
/// second later, and commits arena memory as it is used rather than up front. Together: 142 →
/// 53 MB resident after loading 10,000 flags.
///
/// mimalloc purges only when some thread allocates anew after the delay, which an idle server
/// never does: a rebuilt rule set's garbage stayed resident. `spawn_allocator_purger` does it
/// then. Not at once (a delay of 0): every request frees and allocates hyper's buffers, and
/// purging a page the moment it was empty cost a `madvise`, the other core's TLB flush (an
/// interrupt) and a page fault per request.
///
/// And no transparent huge pages: mimalloc asks for them on its arenas, and a 2 MiB page
/// stays resident whole while a single small object on it lives, which the churn of rule-set
/// rebuilds leaves scattered everywhere. With 10,000 flags and 1,000 SDK streams that was
/// 87 → 115 MB after three changes, against 74 → 82 MB without. The first arena is mapped
/// before `main` runs, so the process-wide switch is needed besides mimalloc's option.
///
/// An operator's `MIMALLOC_*` settings win.
fn tune_allocator() {
    let unset = |name: &str| std::env::var_os(name).is_none();
    // SAFETY: plain setters of mimalloc's option table, called before any other thread runs.
    unsafe {
        if unset("MIMALLOC_PURGE_DELAY") {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
        if unset("MIMALLOC_ARENA_EAGER_COMMIT") {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
        if unset("MIMALLOC_ALLOW_THP") {
            libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
            // SAFETY: sets a flag of this process; no pointers involved. It fails only on
            // kernels older than 3.15, which then keep huge pages.
            #[cfg(target_os = "linux")]
            let _ = libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// See `tune_allocator`.
const PURGE_DELAY_MS: std::ffi::c_long = 100;
/// How often `spawn_allocator_purger` looks for freed memory whose delay is over.
const PURGE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A thread that hands freed memory back to the system once its purge delay is over, which
/// mimalloc itself does only on a later allocation. Its own heap stays empty, so each tick
/// costs next to nothing.
fn spawn_allocator_purger() {
    let purger = std::thread::Builder::new()
        .name("hata-purge".into())
        .spawn(|| loop {
            std::thread::sleep(PURGE_TICK);
            // SAFETY: collects this thread's heap and purges the process's arenas; mimalloc
            // makes both safe to call from any thread at any time.
            unsafe { libmimalloc_sys::mi_collect(false) };
        });
    if let Err(e) = purger {
        tracing::warn!(error = %e, "no allocator purge thread; freed memory is returned later");
    }
}

use anyhow::Context;
use clap::{Parser, Subcommand};
use hata_server::bootstrap::AdminBootstrap;
use hata_server::{AppState, ServerConfig};
use hata_store::{Store, StoreConfig};

#[derive(Parser)]
#[command(name = "hata", version, about = "hata (旗): self-hosted feature flags")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (embedded SQLite by default; no other service needed).
    #[command(after_help = config::ENV_ONLY_HELP)]
    Serve(config::ServeArgs),
    /// Run pending database migrations and exit.
    Migrate(config::ServeArgs),
    /// Write the whole store as one JSON document: projects, environments, flags, segments,
    /// tokens (hashes only), the change record, evaluation counts and installation settings.
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Load a document written by `hata export` into an empty store (SQLite or PostgreSQL).
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Manage API tokens on the store directly (recovery when no admin token works).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manage users on the store directly (the first administrator, or a way back in).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Verify the audit log (on the store, or offline on an export) and print its key.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The daily report and the stale-flag report, from the store (JSON or Markdown).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Back up the store to a directory or S3 (full, or --incremental), or list and verify
    /// backups.
    #[command(after_help = backup::BACKUP_HELP)]
    Backup(backup::BackupCommand),
    /// Restore a backup (or a point in time of a chain) into an empty store.
    #[command(after_help = backup::RESTORE_HELP)]
    Restore(backup::RestoreArgs),
}

const EXPORT_HELP: &str = "\
The document is deterministic (defined order, no export time): exporting the same state twice,
or after moving it to another store with `hata import`, gives identical bytes. It contains token
hashes, users' password hashes and the stream-ticket signing key; keep it like a secret (a file
written with --output is created with mode 0600). Sessions are not exported. Pending migrations
are applied first.

Example: move from the embedded SQLite to PostgreSQL
  hata export --data-dir ./hata-data --output hata.json
  hata import hata.json --database-url postgres://hata@db/hata";

const IMPORT_HELP: &str = "\
The target store must be empty: no projects, tokens, users, changes or evaluation data (a store
on which `hata serve` ran once already has its admin token). Migrations run first. The document
is checked before anything is written, and an invalid one is refused with every problem named by
its path, e.g. projects[shop].flags[dark-mode].environments.production.default. The import is
one transaction: it loads everything or nothing. Ids, versions, revisions and timestamps are
kept, so SDK caches, ETags and stream tickets stay valid.";

#[derive(clap::Args)]
struct ExportArgs {
    /// Where to write the document; `-` is standard output [default: -]
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    store: config::StoreArgs,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The document to load; `-` reads standard input
    file: std::path::PathBuf,
    #[command(flatten)]
    store: config::StoreArgs,
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args.resolve()?).await,
        Command::Migrate(args) => {
            let settings = args.resolve()?;
            let telemetry = init_logging(settings.json_logs)?;
            let store = open_store(&settings.store).await?;
            store.close().await;
            telemetry.shutdown().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Export(args) => {
            init_stderr_logging();
            export(args).await
        }
        Command::Import(args) => {
            init_stderr_logging();
            import(args).await
        }
        Command::Token(command) => {
            init_stderr_logging();
            token::run(command).await
        }
        Command::User(command) => {
            init_stderr_logging();
            user::run(command).await
        }
        Command::Audit(command) => {
            init_stderr_logging();
            audit::run(command).await
        }
        Command::Report(command) => {
            init_stderr_logging();
            report::run(command).await
        }
        Command::Backup(command) => {
            init_stderr_logging();
            backup::run_backup(command).await
        }
        Command::Restore(args) => {
            init_stderr_logging();
            backup::run_restore(args).await
        }
    }
}

/// Warnings and errors only, on stderr: `export` writes its document to stdout.
fn init_stderr_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let settings = args.store.resolve()?;
    let store = open_existing_store(&settings).await?;
    let doc = store.export().await.context("export")?;
    store.close().await;
    let text = doc.to_json().context("export")?;
    match args.output.as_deref() {
        None => write_stdout(&text),
        Some(path) if path.as_os_str() == "-" => write_stdout(&text),
        Some(path) => write_private(path, &text),
    }
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("output: cannot write to standard output")
}

/// Writes `text` to `path` with mode 0600, through a temporary file in the same directory: a
/// failed export never leaves a truncated file that looks like a backup.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut name = path
        .file_name()
        .with_context(|| format!("output: {} is not a file name", path.display()))?
        .to_os_string();
    name.push(".partial");
    let partial = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&partial).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&partial, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("output: cannot write {}", path.display()))
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let settings = args.store.resolve()?;
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let name = args.file.display().to_string();
    let doc = hata_store::ExportDocument::from_json(&text)
        .map_err(|e| describe_import_error(e, &name))?;
    let store = open_store(&settings).await?;
    let result = store.import(&doc).await;
    store.close().await;
    let summary = result.map_err(|e| describe_import_error(e, &name))?;
    println!(
        "imported into {}: {summary}",
        hata_store::redact(&settings.database_url)
    );
    Ok(())
}

/// An import error for a human: every invalid field on its own line (the error's own message
/// names only the first).
fn describe_import_error(e: hata_store::StoreError, file: &str) -> anyhow::Error {
    match e {
        hata_store::StoreError::Invalid(errors) => {
            let mut message = format!("{file} cannot be imported:");
            for e in &errors.0 {
                if e.field.is_empty() {
                    message.push_str(&format!("\n  {}", e.message));
                } else {
                    message.push_str(&format!("\n  {}: {}", e.field, e.message));
                }
            }
            anyhow::anyhow!(message)
        }
        other => anyhow::Error::new(other).context(format!("cannot import {file}")),
    }
}

/// The file of a `sqlite://PATH?options` URL.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Logs as `hata serve` and `hata migrate` write them, and the OTLP span exporter when the
/// environment configures one (`hata_server::telemetry`).
fn init_logging(json: bool) -> anyhow::Result<hata_server::telemetry::Telemetry> {
    let format = if json {
        hata_server::telemetry::LogFormat::Json
    } else {
        hata_server::telemetry::LogFormat::Text
    };
    hata_server::telemetry::init(format, "info,sqlx=warn").context("logging and tracing")
}

async fn open_store(settings: &config::StoreSettings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        hata_server::bootstrap::create_private_dir(&settings.data_dir)
            .with_context(|| format!("data_dir: cannot create {}", settings.data_dir.display()))?;
    }
    let mut config = StoreConfig::new(settings.database_url.clone());
    config.max_connections = settings.db_max_connections;
    config.sqlite_synchronous = settings.sqlite_synchronous;
    // Every command that opens the store may write (migrations chain the earlier change
    // record), so each signs the audit checkpoints its writes make due.
    let (key, created) = hata_server::bootstrap::audit_signing_key(&settings.audit_key)?;
    if created {
        tracing::warn!(
            path = %settings.audit_key.display(),
            key_id = %key.key_id(),
            "created the audit log's signing key; replicas sharing this database need the same file (audit_key)"
        );
    }
    config.audit = hata_store::audit::AuditSettings {
        key: Some(std::sync::Arc::new(key)),
        policy: hata_store::audit::CheckpointPolicy {
            every: settings.audit_checkpoint_every,
        },
    };
    let store = Store::open(&config).await.with_context(|| {
        format!(
            "database_url: cannot open {}",
            hata_store::redact(&settings.database_url)
        )
    })?;
    // Read back from SQLite, so the log says what is in force, not what was asked for.
    if let Some(synchronous) = store.sqlite_synchronous().await.context("database_url")? {
        tracing::info!("SQLite commits with synchronous = {synchronous} (1 normal, 2 full)");
    }
    Ok(store)
}

/// Opens a store that must already exist: opening a SQLite URL creates the file, and a
/// mistyped --data-dir would otherwise export, list or change an empty store without a word.
async fn open_existing_store(settings: &config::StoreSettings) -> anyhow::Result<Store> {
    if let Some(path) = sqlite_path(&settings.database_url) {
        if !path.exists() {
            anyhow::bail!(
                "database_url: no SQLite database at {} (check --data-dir / HATA_DATA_DIR)",
                path.display()
            );
        }
    }
    open_store(settings).await
}

async fn serve(settings: config::Settings) -> anyhow::Result<()> {
    let telemetry = init_logging(settings.json_logs)?;
    if telemetry.traces() {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    // The certificate and the port before the store is touched: a start that cannot serve (a
    // bad certificate, the port in use) must not first create, migrate or bootstrap anything.
    let tls = settings.tls.clone().map(load_tls).transpose()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", settings.listen))?;
    let metrics_listener = match settings.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics_listen: cannot bind {addr}"))?,
        ),
        None => None,
    };
    raise_open_files_limit(settings.limits.max_connections);
    spawn_allocator_purger();
    let store = open_store(&settings.store).await?;
    bootstrap_admin_token(&store, &settings).await?;
    if let Some((email, password)) = &settings.admin_user {
        if let Some(user) =
            hata_server::bootstrap::bootstrap_admin_user(&store, email, password).await?
        {
            tracing::info!(user = %user.id, email = %user.email,
                "admin user created from HATA_ADMIN_EMAIL and HATA_ADMIN_PASSWORD");
        }
    }
    hata_server::bootstrap::record_sso_config(&store, settings.identity.sso.as_deref())
        .await
        .context("recording the single sign-on configuration in the audit log")?;
    // The scheduler starts with the state: the retention job (evaluation data, the audit
    // log's --audit-retention) and, once registered, the backup jobs.
    let state =
        AppState::start_with_jobs(store.clone(), settings.token_ages, settings.jobs.clone())
            .await
            .context("loading server state")?;
    let limits = &settings.limits;
    let config = ServerConfig {
        body_limit: settings.body_limit,
        public_url: settings.public_url.clone(),
        eval_rate_limit: settings.eval_rate_limit,
        body_timeout: limits.body_timeout,
        connections: hata_server::ConnectionLimits {
            max_connections: limits.max_connections,
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
        },
        max_streams: limits.max_streams,
        max_streams_per_token: limits.max_streams_per_token,
        trusted_proxies: settings.trusted_proxies.clone(),
        max_context_members: limits.max_context_members,
        tls,
        identity: settings.identity.clone(),
        jwt: settings.jwt.clone(),
        metrics: settings.metrics.config.clone(),
        jobs: settings.jobs.clone(),
        access_log: settings.access_log,
        backups: settings.backup.to.clone(),
        limits: std::sync::Arc::new(
            hata_server::limits::Limits::new(&settings.rate_limits).map_err(anyhow::Error::msg)?,
        ),
        // The web UI, at `/` beside the API.
        extra_routes: Some(hata_web::router),
        extra_route_templates: hata_web::ROUTES,
        ..ServerConfig::default()
    };
    let app = hata_server::router(state.clone(), &config);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(listen = %settings.listen, scheme, database = %hata_store::redact(&settings.store.database_url), "hata is serving");
    let budgets = &settings.rate_limits;
    tracing::info!(
        admin_per_minute = budgets.admin_per_minute,
        login_per_minute = budgets.login_per_minute,
        shared_through = %budgets.redis_url.as_deref().map(hata_store::redact).unwrap_or_else(|| "nothing (per replica)".into()),
        "rate limits"
    );
    if let Some(metrics) = metrics_listener {
        tracing::info!(listen = ?metrics.local_addr().ok(), "serving /metrics");
        let router = app.metrics_router(settings.metrics.config.clone(), config.limits.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, router).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let stopping = state.clone();
    hata_server::serve(
        listener,
        app,
        config.connections,
        async move {
            shutdown_signal().await;
            // Open event streams never end on their own; end them so in-flight requests can.
            stopping.begin_shutdown();
        },
        settings.limits.shutdown_grace,
    )
    .await;
    tracing::info!(
        "in-flight requests finished; storing evaluation counts and closing the database"
    );
    state.finish_shutdown().await;
    store.close().await;
    telemetry.shutdown().await;
    Ok(())
}

/// Reads and checks the certificate and key, naming the setting at fault.
fn load_tls(
    files: hata_server::connections::tls::TlsFiles,
) -> anyhow::Result<std::sync::Arc<hata_server::connections::tls::Tls>> {
    use hata_server::connections::tls::{Tls, TlsFile};
    Tls::load(files).map(std::sync::Arc::new).map_err(|e| {
        let setting = match e.file() {
            Some(TlsFile::Cert) => "tls_cert (--tls-cert / HATA_TLS_CERT)",
            Some(TlsFile::Key) => "tls_key (--tls-key / HATA_TLS_KEY)",
            None => "TLS",
        };
        anyhow::anyhow!("{setting}: {e}")
    })
}

/// Every connection is a file descriptor: raises the soft limit on open files to the hard
/// limit (as Go's runtime does), and warns when even that is short of `max_connections`.
fn raise_open_files_limit(max_connections: usize) {
    #[cfg(target_os = "linux")]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit write and read the struct passed, nothing else.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        // Files, the database and the listener need some descriptors beyond connections.
        let needed = max_connections as u64 + 256;
        if limit.rlim_cur < needed {
            tracing::warn!(
                open_files = limit.rlim_cur,
                max_connections,
                "the open-files limit is below max_connections (HATA_MAX_CONNECTIONS) + 256; \
                 connections beyond it fail to be accepted"
            );
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested");
}

/// On the first start (a store without tokens): `HATA_ADMIN_TOKEN` becomes the admin token, or
/// one is generated, written to `<data-dir>/admin-token` (mode 0600) and printed once.
async fn bootstrap_admin_token(store: &Store, settings: &config::Settings) -> anyhow::Result<()> {
    match hata_server::bootstrap::bootstrap_admin_token(
        store,
        settings.admin_token.as_deref(),
        &settings.store.data_dir,
    )
    .await?
    {
        AdminBootstrap::Existing => {}
        AdminBootstrap::Given => tracing::info!("admin token taken from HATA_ADMIN_TOKEN"),
        AdminBootstrap::Generated { secret, path } => println!(
            "hata: generated the admin token (shown once; also in {}):\n{secret}",
            path.display()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option indices still name the options they are meant to: in `options.c` of the
    /// bundled mimalloc the purge delay defaults to 1000 ms, arena eager commit to 2 and
    /// allowing transparent huge pages to 1 (on Linux), and no option at a neighbouring index
    /// has such defaults.
    #[test]
    fn allocator_option_indices_name_the_documented_options() {
        if std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MIMALLOC_")) {
            return; // Defaults overridden from outside; nothing to compare with.
        }
        // SAFETY: reads of mimalloc's option table.
        let (purge, eager, thp) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP),
            )
        };
        assert_eq!((purge, eager, thp), (1000, 2, 1));
        // The neighbours of the THP switch: cross-thread reclaim limit 32, minimal purge 0.
        // SAFETY: as above.
        let neighbours = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP - 1),
                libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP + 1),
            )
        };
        assert_eq!(neighbours, (32, 0));
    }
}
