//! The `hata` binary: `serve` and `migrate`. The only place that uses `anyhow`: errors from the
//! libraries are printed for a human here.

mod config;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args.resolve()?).await,
        Command::Migrate(args) => {
            let settings = args.resolve()?;
            init_logging(settings.json_logs);
            let store = open_store(&settings).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn open_store(settings: &config::Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("data_dir: cannot create {}", settings.data_dir.display()))?;
    }
    let mut config = StoreConfig::new(settings.database_url.clone());
    config.max_connections = settings.db_max_connections;
    Store::open(&config).await.with_context(|| {
        format!(
            "database_url: cannot open {}",
            hata_store::redact(&settings.database_url)
        )
    })
}

async fn serve(settings: config::Settings) -> anyhow::Result<()> {
    init_logging(settings.json_logs);
    let store = open_store(&settings).await?;
    bootstrap_admin_token(&store, &settings).await?;
    let state = AppState::start(store.clone())
        .await
        .context("loading server state")?;
    let app = hata_server::router(
        state.clone(),
        &ServerConfig {
            body_limit: settings.body_limit,
            public_url: settings.public_url.clone(),
            eval_rate_limit: settings.eval_rate_limit,
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", settings.listen))?;
    tracing::info!(listen = %settings.listen, database = %hata_store::redact(&settings.database_url), "hata is serving");
    let stopping = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Open event streams never end on their own; end them so in-flight requests can.
            stopping.begin_shutdown();
        })
        .await
        .context("server")?;
    tracing::info!(
        "in-flight requests finished; storing evaluation counts and closing the database"
    );
    state.finish_shutdown().await;
    store.close().await;
    Ok(())
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
        &settings.data_dir,
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
