//! `hata` settings: one typed struct, from flags, `HATA_*` environment variables and an
//! optional TOML file, in that order of precedence; validated at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

/// The settings that are environment variables only, for `hata serve --help`.
pub const ENV_ONLY_HELP: &str = "\
Environment only:
  HATA_ADMIN_TOKEN  The admin token to create on the first start, when the store has no tokens
                    (at least 16 characters). Without it, a token is generated, printed once and
                    written to <data-dir>/admin-token (mode 0600). Later starts ignore it.
  HATA_ADMIN_EMAIL, HATA_ADMIN_PASSWORD
                    An admin user to create on the first start, when the store has no users
                    (the password must meet the policy: 12+ characters, not a common one).
                    Later starts ignore them.
  RUST_LOG          Log levels, e.g. info,hata_store=debug [default: info,sqlx=warn]";

/// Where the store is: shared by every subcommand that opens it, so `serve`, `migrate`,
/// `export` and `import` resolve the same database from the same flags, variables and file.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Directory for the embedded SQLite database and the admin token file [default: ./hata-data]
    #[arg(long, env = "HATA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://<data-dir>/hata.db]
    #[arg(long, env = "HATA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Maximum database connections [default: 8]
    #[arg(long, env = "HATA_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// SQLite only: normal or full. Both are crash-safe (WAL); normal may lose the last commits
    /// on a power loss or OS crash, full syncs every commit (slower writes) [default: normal]
    #[arg(long, env = "HATA_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// PEM file of the Ed25519 key that signs the audit log's checkpoints; created (mode
    /// 0600) when missing. Replicas on one PostgreSQL must share it
    /// [default: <data-dir>/audit-signing-key.pem]
    #[arg(long, env = "HATA_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// The audit log gets a signed checkpoint every this many entries (and at least every
    /// 10 minutes while anything is written) [default: 1000]
    #[arg(long, env = "HATA_AUDIT_CHECKPOINT_EVERY")]
    pub audit_checkpoint_every: Option<u64>,
    /// TOML file with any of the `hata serve` settings (keys: listen, data_dir, database_url,
    /// body_limit, db_max_connections, sqlite_synchronous, audit_key, audit_checkpoint_every,
    /// log_format, public_url, eval_rate_limit, admin_rate_limit, login_rate_limit, redis_url,
    /// token_max_age_days, audit_retention, jobs_enabled, schedule_retention,
    /// schedule_backup_full, schedule_backup_incremental, schedule_backup_verify,
    /// job_retry_delays, evaluation_retention, trusted_proxies, tls_cert, tls_key, header_timeout,
    /// idle_timeout,
    /// body_timeout, shutdown_grace, max_connections, max_streams, max_streams_per_token,
    /// max_context_members, metrics_token, metrics_listen, metrics_max_flags, access_log,
    /// access_log_sample_evaluations,
    /// session_idle_timeout, session_max_age, lockout_after,
    /// lockout_duration, password_hashers, mfa_required_for_admins,
    /// mfa_required_for_protected, oidc_issuer, oidc_client_id, oidc_client_secret,
    /// oidc_redirect_url, oidc_scopes, jwt_issuer, jwt_audience, jwt_jwks_url,
    /// jwt_algorithms, jwt_leeway, backup_to, backup_s3_endpoint, backup_s3_region,
    /// backup_s3_allow_http, backup_keep_full, backup_keep_incremental, report_webhook_url,
    /// schedule_report_webhook, and [[role_mappings]] tables). Flags and HATA_* variables
    /// win over it.
    #[arg(long, env = "HATA_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The resolved store settings.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub db_max_connections: u32,
    pub sqlite_synchronous: hata_store::SqliteSynchronous,
    pub audit_key: PathBuf,
    pub audit_checkpoint_every: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7070]
    #[arg(long, env = "HATA_LISTEN")]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Largest accepted request body in bytes; larger bodies get 413 [default: 1048576]
    #[arg(long, env = "HATA_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "HATA_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// URL clients reach this server at, e.g. https://flags.example.com; used in the OFREP
    /// event-stream URL [default: http(s)://<the request's Host>]
    #[arg(long, env = "HATA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// OFREP evaluation requests per second allowed per token; more get 429 with Retry-After;
    /// 0 = unlimited [default: 0]
    #[arg(long, env = "HATA_EVAL_RATE_LIMIT")]
    pub eval_rate_limit: Option<u32>,
    /// Admin API requests per minute per principal (or per client address without valid
    /// credentials); more get 429 with Retry-After and RateLimit-* headers; 0 = unlimited
    /// [default: 100]
    #[arg(long, env = "HATA_ADMIN_RATE_LIMIT")]
    pub admin_rate_limit: Option<u32>,
    /// Login attempts per minute per account and per client address; 0 = unlimited
    /// [default: 10]
    #[arg(long, env = "HATA_LOGIN_RATE_LIMIT")]
    pub login_rate_limit: Option<u32>,
    /// Redis that every replica shares the admin and login rate limits through, e.g.
    /// redis://10.0.0.5:6379; while it does not answer each replica limits on its own
    /// [default: none, per replica]
    #[arg(long, env = "HATA_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Days an API token works after its creation or last rotation; older ones get 401 and
    /// are listed from 14 days before by `hata token list --due` and GET /tokens?due=true;
    /// 0 = no maximum age [default: 90]
    #[arg(long, env = "HATA_TOKEN_MAX_AGE_DAYS")]
    pub token_max_age_days: Option<u64>,
    /// Days the audit log keeps entries; older ones are removed by the retention job behind a
    /// signed checkpoint, so what is kept still verifies; 0 = keep forever [default: 0]
    #[arg(long, env = "HATA_AUDIT_RETENTION")]
    pub audit_retention: Option<u64>,
    #[command(flatten)]
    pub jobs: JobArgs,
    /// Comma-separated addresses and CIDR networks of reverse proxies whose X-Forwarded-For,
    /// -Proto and -Host headers are believed; from anyone else they are ignored [default: none]
    #[arg(long, env = "HATA_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub access_log: AccessLogArgs,
    #[command(flatten)]
    pub backup: BackupArgs,
}

/// The access log (`hata serve`): one line per request (target `hata::access`).
#[derive(Debug, Args)]
pub struct AccessLogArgs {
    /// The access log: on or off [default: on]
    #[arg(long, env = "HATA_ACCESS_LOG")]
    pub access_log: Option<String>,
    /// The share (0.0 to 1.0) of evaluations answered below 400 that get an access log line;
    /// every other request, and every evaluation answered 400 or above, gets one
    /// [default: 0.01]
    #[arg(long, env = "HATA_ACCESS_LOG_SAMPLE_EVALUATIONS")]
    pub access_log_sample_evaluations: Option<f64>,
}

impl AccessLogArgs {
    fn resolve_with(
        self,
        file: &FileSettings,
    ) -> anyhow::Result<hata_server::dispatch::access_log::AccessLogConfig> {
        let enabled = match self
            .access_log
            .or_else(|| file.access_log.clone())
            .as_deref()
        {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => bail!("access_log (HATA_ACCESS_LOG) must be on or off, got {other:?}"),
        };
        let sample_evaluations = self
            .access_log_sample_evaluations
            .or(file.access_log_sample_evaluations)
            .unwrap_or(hata_server::dispatch::access_log::DEFAULT_SAMPLE_EVALUATIONS);
        if !(0.0..=1.0).contains(&sample_evaluations) {
            bail!(
                "access_log_sample_evaluations (HATA_ACCESS_LOG_SAMPLE_EVALUATIONS) must be \
                 between 0.0 and 1.0, got {sample_evaluations}"
            );
        }
        Ok(hata_server::dispatch::access_log::AccessLogConfig {
            enabled,
            sample_evaluations,
        })
    }
}

/// The scheduled jobs (`hata serve`): whether this replica runs them, when each runs, how
/// failures are retried, and how long the retention job keeps evaluation data.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Run the scheduled jobs on this replica (with several replicas on PostgreSQL each
    /// occurrence still runs once, on one of them) [default: true]
    #[arg(long, env = "HATA_JOBS_ENABLED", num_args = 0..=1, default_missing_value = "true")]
    pub jobs_enabled: Option<bool>,
    /// When the retention job runs: a cron pattern in UTC (minute hour day-of-month month
    /// day-of-week, optionally seconds first) or off [default: 0 4 * * *]
    #[arg(long, env = "HATA_SCHEDULE_RETENTION")]
    pub schedule_retention: Option<String>,
    /// When the full backup runs (cron, UTC, or off) [default: 0 2 * * *]
    #[arg(long, env = "HATA_SCHEDULE_BACKUP_FULL")]
    pub schedule_backup_full: Option<String>,
    /// When the incremental backup runs (cron, UTC, or off) [default: 0 * * * *]
    #[arg(long, env = "HATA_SCHEDULE_BACKUP_INCREMENTAL")]
    pub schedule_backup_incremental: Option<String>,
    /// When the backups are verified (cron, UTC, or off) [default: 30 3 * * *]
    #[arg(long, env = "HATA_SCHEDULE_BACKUP_VERIFY")]
    pub schedule_backup_verify: Option<String>,
    /// Delays before each retry of a failed job run, comma-separated with units (ms, s, m,
    /// h); as many retries as delays; empty: none [default: 5m,15m,30m]
    #[arg(long, env = "HATA_JOB_RETRY_DELAYS")]
    pub job_retry_delays: Option<String>,
    /// Days evaluation counts and last-evaluated times are kept; the retention job deletes
    /// older ones, and finished job runs and serving hours of the same age (serving hours at
    /// least 32 days: the daily report's error budget looks back 30); 0 = keep forever
    /// [default: 30]
    #[arg(long, env = "HATA_EVALUATION_RETENTION")]
    pub evaluation_retention: Option<u64>,
    /// A Slack-compatible incoming webhook (https://…) that gets the previous day's daily
    /// report every morning (job report-webhook); a secret: it is never logged [default: none]
    #[arg(long, env = "HATA_REPORT_WEBHOOK_URL", hide_env_values = true)]
    pub report_webhook_url: Option<String>,
    /// When the daily report is posted to the webhook (cron, UTC, or off) [default: 0 7 * * *]
    #[arg(long, env = "HATA_SCHEDULE_REPORT_WEBHOOK")]
    pub schedule_report_webhook: Option<String>,
}

impl JobArgs {
    /// The scheduler's configuration, with the retention job registered (audit retention
    /// `audit_retention_days`, 0: forever; `prune_backups`, when backups are configured, its
    /// last step) and the report webhook when one is configured.
    fn resolve_with(
        self,
        file: &FileSettings,
        audit_retention_days: u64,
        prune_backups: Option<std::sync::Arc<dyn hata_jobs::Job>>,
    ) -> anyhow::Result<hata_jobs::JobsConfig> {
        use hata_jobs::names;
        let mut config = hata_jobs::JobsConfig::default();
        config.enabled = self.jobs_enabled.or(file.jobs_enabled).unwrap_or(true);
        let schedules = [
            (
                names::RETENTION,
                "schedule_retention",
                "HATA_SCHEDULE_RETENTION",
                self.schedule_retention.or(file.schedule_retention.clone()),
            ),
            (
                names::BACKUP_FULL,
                "schedule_backup_full",
                "HATA_SCHEDULE_BACKUP_FULL",
                self.schedule_backup_full
                    .or(file.schedule_backup_full.clone()),
            ),
            (
                names::BACKUP_INCREMENTAL,
                "schedule_backup_incremental",
                "HATA_SCHEDULE_BACKUP_INCREMENTAL",
                self.schedule_backup_incremental
                    .or(file.schedule_backup_incremental.clone()),
            ),
            (
                names::BACKUP_VERIFY,
                "schedule_backup_verify",
                "HATA_SCHEDULE_BACKUP_VERIFY",
                self.schedule_backup_verify
                    .or(file.schedule_backup_verify.clone()),
            ),
            (
                names::REPORT_WEBHOOK,
                "schedule_report_webhook",
                "HATA_SCHEDULE_REPORT_WEBHOOK",
                self.schedule_report_webhook
                    .or(file.schedule_report_webhook.clone()),
            ),
        ];
        for (job, setting, env, value) in schedules {
            if let Some(text) = value {
                let schedule = hata_jobs::Schedule::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{setting} ({env}): {e}"))?;
                config.schedules.insert(job.to_string(), schedule);
            }
        }
        if let Some(delays) = self.job_retry_delays.or(file.job_retry_delays.clone()) {
            config.retry = hata_jobs::RetryPolicy::parse(&delays)
                .map_err(|e| anyhow::anyhow!("job_retry_delays (HATA_JOB_RETRY_DELAYS): {e}"))?;
        }
        let days = |d: u64| (d > 0).then(|| Duration::from_secs(d.saturating_mul(86_400)));
        let evaluations = self
            .evaluation_retention
            .or(file.evaluation_retention)
            .unwrap_or(30);
        let mut retention =
            hata_jobs::Retention::new(days(evaluations), days(audit_retention_days));
        if let Some(step) = prune_backups {
            retention = retention.also("backups", step);
        }
        config.register(names::RETENTION, std::sync::Arc::new(retention));
        let webhook = self
            .report_webhook_url
            .or(file.report_webhook_url.clone())
            .filter(|u| !u.is_empty());
        if let Some(url) = webhook {
            let job = hata_server::report_webhook::ReportWebhook::new(&url).map_err(|e| {
                anyhow::anyhow!("report_webhook_url (HATA_REPORT_WEBHOOK_URL): {e}")
            })?;
            config.register(names::REPORT_WEBHOOK, std::sync::Arc::new(job));
        }
        Ok(config)
    }
}

/// Where backups go (`hata serve` for `GET /api/v1/backups` and its jobs, `hata backup`,
/// `hata restore`). S3 credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where backups go: a directory, or s3://bucket/prefix [default: none]
    #[arg(long, env = "HATA_BACKUP_TO")]
    pub backup_to: Option<String>,
    /// The S3-compatible endpoint, e.g. http://127.0.0.1:9000 [default: AWS's]
    #[arg(long, env = "HATA_BACKUP_S3_ENDPOINT")]
    pub backup_s3_endpoint: Option<String>,
    /// The S3 region [default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1]
    #[arg(long, env = "HATA_BACKUP_S3_REGION")]
    pub backup_s3_region: Option<String>,
    /// Allow a plain http:// S3 endpoint (a server on this machine or network)
    /// [default: false]
    #[arg(long, env = "HATA_BACKUP_S3_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub backup_s3_allow_http: Option<bool>,
    /// Full backups kept at the destination; older ones are deleted after each backup and by
    /// the retention job, except those a kept increment is restored onto [default: 30]
    #[arg(long, env = "HATA_BACKUP_KEEP_FULL")]
    pub backup_keep_full: Option<usize>,
    /// Incremental backups kept at the destination, likewise [default: 24]
    #[arg(long, env = "HATA_BACKUP_KEEP_INCREMENTAL")]
    pub backup_keep_incremental: Option<usize>,
}

/// The resolved backup settings: the configured destination (checked, not contacted) and
/// the S3 settings any `s3://` destination uses.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub to: Option<hata_backup::Destination>,
    pub s3: hata_backup::S3Settings,
    /// How many backups of each kind pruning keeps.
    pub keep: hata_backup::Generations,
}

impl BackupArgs {
    fn resolve_with(self, file: &FileSettings) -> anyhow::Result<BackupSettings> {
        let s3 = hata_backup::S3Settings {
            endpoint: self
                .backup_s3_endpoint
                .or_else(|| file.backup_s3_endpoint.clone())
                .filter(|e| !e.is_empty()),
            region: self
                .backup_s3_region
                .or_else(|| file.backup_s3_region.clone())
                .filter(|r| !r.is_empty()),
            allow_http: self
                .backup_s3_allow_http
                .or(file.backup_s3_allow_http)
                .unwrap_or(false),
        };
        if let Some(endpoint) = &s3.endpoint {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                bail!("backup_s3_endpoint (HATA_BACKUP_S3_ENDPOINT) must be an http(s):// URL, got {endpoint:?}");
            }
            if endpoint.starts_with("http://") && !s3.allow_http {
                bail!("backup_s3_endpoint (HATA_BACKUP_S3_ENDPOINT) is plain http://: set backup_s3_allow_http (HATA_BACKUP_S3_ALLOW_HTTP=true) to use it");
            }
        }
        let to = match self.backup_to.or_else(|| file.backup_to.clone()) {
            Some(text) if !text.is_empty() => Some(
                hata_backup::Destination::parse(&text, &s3)
                    .map_err(|e| anyhow::anyhow!("backup_to (HATA_BACKUP_TO): {e}"))?,
            ),
            _ => None,
        };
        let default = hata_backup::Generations::default();
        let full = self
            .backup_keep_full
            .or(file.backup_keep_full)
            .unwrap_or(default.full);
        let incremental = self
            .backup_keep_incremental
            .or(file.backup_keep_incremental)
            .unwrap_or(default.incremental);
        let keep = hata_backup::Generations::new(full, incremental).map_err(|e| {
            let setting = if full == 0 {
                "backup_keep_full (HATA_BACKUP_KEEP_FULL)"
            } else {
                "backup_keep_incremental (HATA_BACKUP_KEEP_INCREMENTAL)"
            };
            anyhow::anyhow!("{setting}: {e}")
        })?;
        Ok(BackupSettings { to, s3, keep })
    }
}

/// The store and backup settings of `hata backup` and `hata restore`, from one config file.
pub fn resolve_backup(
    store: StoreArgs,
    backup: BackupArgs,
) -> anyhow::Result<(StoreSettings, BackupSettings)> {
    let file = read_file(store.config.as_deref())?;
    let backup = backup.resolve_with(&file)?;
    Ok((store.resolve_with(&file)?, backup))
}

/// `GET /metrics` (`hata serve`).
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Serve /metrics only to `Authorization: Bearer <this>` (401 otherwise); prefer the
    /// environment variable, which stays out of the process list [default: none, open]
    #[arg(long, env = "HATA_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
    /// Serve /metrics on this address (e.g. 127.0.0.1:9090) instead of the main listener
    /// [default: none, on the main listener]
    #[arg(long, env = "HATA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Flags per environment with hata_evaluations_total series of their own; the rest are
    /// summed under flag="_other" [default: 1000]
    #[arg(long, env = "HATA_METRICS_MAX_FLAGS")]
    pub metrics_max_flags: Option<usize>,
}

/// The resolved metrics settings.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub listen: Option<SocketAddr>,
    pub config: hata_server::metrics::MetricsConfig,
}

impl MetricsArgs {
    fn resolve_with(self, file: &FileSettings) -> anyhow::Result<MetricsSettings> {
        let token = self
            .metrics_token
            .or_else(|| file.metrics_token.clone())
            .filter(|t| !t.is_empty());
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("metrics_token (HATA_METRICS_TOKEN) must be at least 16 characters");
        }
        let max_flags = self
            .metrics_max_flags
            .or(file.metrics_max_flags)
            .unwrap_or(hata_server::metrics::DEFAULT_MAX_FLAGS);
        if max_flags == 0 {
            bail!("metrics_max_flags (HATA_METRICS_MAX_FLAGS) must be at least 1");
        }
        let listen = self.metrics_listen.or(file.metrics_listen);
        Ok(MetricsSettings {
            listen,
            config: hata_server::metrics::MetricsConfig {
                token,
                max_flags,
                on_main: listen.is_none(),
            },
        })
    }
}

/// JWT bearer tokens of an identity provider (`hata serve`). Their claims map to roles by the
/// configuration file's `[[role_mappings]]`.
#[derive(Debug, Args)]
pub struct JwtArgs {
    /// Accept JWTs whose `iss` is this issuer as bearer tokens, e.g. https://id.example.com
    /// [default: none, JWTs are not accepted]
    #[arg(long, env = "HATA_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The audience a JWT must name in `aud` (required with --jwt-issuer)
    #[arg(long, env = "HATA_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The issuer's key set (JWKS) URL [default: the jwks_uri of
    /// <issuer>/.well-known/openid-configuration]
    #[arg(long, env = "HATA_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// Comma-separated signature algorithms accepted; HS* and none never are
    /// [default: RS256,ES256,EdDSA,PS256]
    #[arg(long, env = "HATA_JWT_ALGORITHMS")]
    pub jwt_algorithms: Option<String>,
    /// Seconds of clock difference tolerated on a JWT's exp and nbf [default: 60]
    #[arg(long, env = "HATA_JWT_LEEWAY")]
    pub jwt_leeway: Option<u64>,
}

impl JwtArgs {
    fn resolve_with(
        self,
        file: &FileSettings,
    ) -> anyhow::Result<Option<std::sync::Arc<hata_server::auth::jwt::JwtVerifier>>> {
        use hata_server::auth::jwt::{parse_algorithm, JwtConfig, JwtVerifier};
        let issuer = self.jwt_issuer.or(file.jwt_issuer.clone());
        let audience = self.jwt_audience.or(file.jwt_audience.clone());
        let jwks_url = self.jwt_jwks_url.or(file.jwt_jwks_url.clone());
        let algorithms = self.jwt_algorithms.or(file.jwt_algorithms.clone());
        let leeway = self.jwt_leeway.or(file.jwt_leeway);
        let Some(issuer) = issuer.filter(|i| !i.is_empty()) else {
            if audience.is_some() || jwks_url.is_some() || algorithms.is_some() || leeway.is_some()
            {
                bail!("jwt_issuer (--jwt-issuer / HATA_JWT_ISSUER) is not set: the other jwt_* settings need it");
            }
            return Ok(None);
        };
        let Some(audience) = audience.filter(|a| !a.is_empty()) else {
            bail!(
                "jwt_audience (--jwt-audience / HATA_JWT_AUDIENCE) is not set: a JWT must name \
                 this server as its audience"
            );
        };
        let mut config = JwtConfig::new(issuer, audience);
        config.jwks_url = jwks_url.filter(|u| !u.is_empty());
        if let Some(list) = algorithms {
            config.algorithms = list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(parse_algorithm)
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("jwt_algorithms (HATA_JWT_ALGORITHMS): {e}"))?;
        }
        if let Some(leeway) = leeway {
            config.leeway = Duration::from_secs(leeway);
        }
        config.role_map = hata_access::claims::RoleMap::new(file.role_mappings.clone());
        let verifier = JwtVerifier::new(config).map_err(anyhow::Error::msg)?;
        Ok(Some(std::sync::Arc::new(verifier)))
    }
}

/// Sessions and logins (`hata serve`).
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Seconds a session may go unused before it ends [default: 43200, 12 hours]
    #[arg(long, env = "HATA_SESSION_IDLE_TIMEOUT")]
    pub session_idle_timeout: Option<u64>,
    /// Seconds a session lasts at most, however busy [default: 604800, 7 days]
    #[arg(long, env = "HATA_SESSION_MAX_AGE")]
    pub session_max_age: Option<u64>,
    /// Consecutive failed logins that lock an account (after 3, each further attempt waits
    /// longer, 1 s doubling up to a minute); 0 never locks [default: 10]
    #[arg(long, env = "HATA_LOCKOUT_AFTER")]
    pub lockout_after: Option<u32>,
    /// Seconds a locked account refuses every login [default: 900, 15 minutes]
    #[arg(long, env = "HATA_LOCKOUT_DURATION")]
    pub lockout_duration: Option<u64>,
    /// Password hashes (argon2id, ~19 MiB each) computed at once; 0 = half the cores
    /// [default: 0]
    #[arg(long, env = "HATA_PASSWORD_HASHERS")]
    pub password_hashers: Option<usize>,
    /// Administrators must turn on two-factor authentication (TOTP) to act as administrators;
    /// until then they keep only their project roles [default: false]
    #[arg(long, env = "HATA_MFA_REQUIRED_FOR_ADMINS", num_args = 0..=1, default_missing_value = "true")]
    pub mfa_required_for_admins: Option<bool>,
    /// Changes to protected environments (production by default) need two-factor
    /// authentication; API tokens are not affected [default: false]
    #[arg(long, env = "HATA_MFA_REQUIRED_FOR_PROTECTED", num_args = 0..=1, default_missing_value = "true")]
    pub mfa_required_for_protected: Option<bool>,
    /// Single sign-on: the OpenID Connect provider's issuer URL (discovered at
    /// <issuer>/.well-known/openid-configuration) [default: none, no single sign-on]
    #[arg(long, env = "HATA_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The client id hata is registered under at the provider
    #[arg(long, env = "HATA_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The client secret (environment or config file only: not a flag, so that it stays out
    /// of the process list)
    #[arg(skip)]
    pub oidc_client_secret: Option<String>,
    /// Where the provider sends browsers back; register it there
    /// [default: <public url>/api/v1/auth/oidc/callback]
    #[arg(long, env = "HATA_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    /// Space-separated scopes besides openid [default: email profile]
    #[arg(long, env = "HATA_OIDC_SCOPES")]
    pub oidc_scopes: Option<String>,
}

impl IdentityArgs {
    /// Single sign-on, when an issuer is set: checked now (URLs, the client id), the provider
    /// itself is reached at the first login.
    fn oidc(
        &self,
        file: &FileSettings,
    ) -> anyhow::Result<Option<std::sync::Arc<hata_server::sso::Sso>>> {
        let Some(issuer) = self.oidc_issuer.clone().or(file.oidc_issuer.clone()) else {
            return Ok(None);
        };
        let secret = std::env::var("HATA_OIDC_CLIENT_SECRET")
            .ok()
            .or(self.oidc_client_secret.clone())
            .or(file.oidc_client_secret.clone())
            .filter(|s| !s.is_empty());
        let config = hata_server::sso::OidcConfig {
            issuer,
            client_id: self
                .oidc_client_id
                .clone()
                .or(file.oidc_client_id.clone())
                .unwrap_or_default(),
            client_secret: secret,
            redirect_url: self
                .oidc_redirect_url
                .clone()
                .or(file.oidc_redirect_url.clone()),
            scopes: self
                .oidc_scopes
                .clone()
                .or(file.oidc_scopes.clone())
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            role_map: hata_access::claims::RoleMap::new(file.role_mappings.clone()),
        };
        let sso = hata_server::sso::Sso::new(config).map_err(anyhow::Error::msg)?;
        Ok(Some(std::sync::Arc::new(sso)))
    }

    fn resolve_with(
        self,
        file: &FileSettings,
    ) -> anyhow::Result<hata_server::auth::identity::IdentityConfig> {
        use hata_access::lockout::LockoutPolicy;
        use hata_access::session::SessionPolicy;
        let positive = |name: &str, env: &str, value: Option<u64>, default: u64| {
            let value = value.unwrap_or(default);
            if value == 0 {
                bail!("{name} ({env}) must be at least 1 second");
            }
            Ok(Duration::from_secs(value))
        };
        let sessions = SessionPolicy {
            idle: positive(
                "session_idle_timeout",
                "HATA_SESSION_IDLE_TIMEOUT",
                self.session_idle_timeout.or(file.session_idle_timeout),
                12 * 3600,
            )?,
            absolute: positive(
                "session_max_age",
                "HATA_SESSION_MAX_AGE",
                self.session_max_age.or(file.session_max_age),
                7 * 24 * 3600,
            )?,
        };
        let lockout = LockoutPolicy {
            lock_after: self
                .lockout_after
                .or(file.lockout_after)
                .unwrap_or(LockoutPolicy::default().lock_after),
            lock_for: positive(
                "lockout_duration",
                "HATA_LOCKOUT_DURATION",
                self.lockout_duration.or(file.lockout_duration),
                15 * 60,
            )?,
            ..LockoutPolicy::default()
        };
        Ok(hata_server::auth::identity::IdentityConfig {
            sessions,
            lockout,
            hashing_concurrency: self.password_hashers.or(file.password_hashers).unwrap_or(0),
            sso: self.oidc(file)?,
            mfa: hata_access::totp::MfaPolicy {
                admins: self
                    .mfa_required_for_admins
                    .or(file.mfa_required_for_admins)
                    .unwrap_or(false),
                protected_environments: self
                    .mfa_required_for_protected
                    .or(file.mfa_required_for_protected)
                    .unwrap_or(false),
            },
        })
    }
}

/// Native TLS (`hata serve`). Behind a load balancer that terminates TLS, leave these unset
/// and list the balancer in --trusted-proxies.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM certificate chain (the server's certificate first): serve HTTPS (TLS 1.2 and 1.3,
    /// HTTP/2 and HTTP/1.1, HSTS) instead of HTTP. Needs --tls-key. Reloaded when the file
    /// changes (checked every 3 s) or on SIGHUP [default: none, plain HTTP]
    #[arg(long, env = "HATA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the --tls-cert certificate (PKCS#8, RSA or EC) [default: none]
    #[arg(long, env = "HATA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Connection and stream limits (`hata serve`).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Seconds a request's header may take from its first byte; slower clients are
    /// disconnected [default: 10]
    #[arg(long, env = "HATA_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a kept-alive connection may wait for its next request. Behind a load balancer,
    /// set it above the balancer's own idle timeout [default: 75]
    #[arg(long, env = "HATA_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Seconds a request body may stop arriving before the request gets 408 [default: 30]
    #[arg(long, env = "HATA_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Connections open at once; more wait in the accept queue [default: 10000]
    #[arg(long, env = "HATA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Event streams (OFREP and SDK) open at once; more get 429 [default: 10000]
    #[arg(long, env = "HATA_MAX_STREAMS")]
    pub max_streams: Option<usize>,
    /// Event streams open at once per token (a client token is shared by every browser of an
    /// app: size it for them); more get 429 [default: 2000]
    #[arg(long, env = "HATA_MAX_STREAMS_PER_TOKEN")]
    pub max_streams_per_token: Option<usize>,
    /// Members an evaluation context may have; more get OFREP INVALID_CONTEXT [default: 1000]
    #[arg(long, env = "HATA_MAX_CONTEXT_MEMBERS")]
    pub max_context_members: Option<usize>,
    /// Seconds a shutdown (SIGTERM) waits for requests in flight before closing their
    /// connections; readiness answers 503 and event streams are told to reconnect at once.
    /// Keep it below Kubernetes' terminationGracePeriodSeconds minus the preStop sleep
    /// [default: 20]
    #[arg(long, env = "HATA_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    body_limit: Option<usize>,
    db_max_connections: Option<u32>,
    sqlite_synchronous: Option<String>,
    audit_key: Option<PathBuf>,
    audit_checkpoint_every: Option<u64>,
    log_format: Option<String>,
    public_url: Option<String>,
    eval_rate_limit: Option<u32>,
    admin_rate_limit: Option<u32>,
    login_rate_limit: Option<u32>,
    redis_url: Option<String>,
    token_max_age_days: Option<u64>,
    audit_retention: Option<u64>,
    jobs_enabled: Option<bool>,
    schedule_retention: Option<String>,
    schedule_backup_full: Option<String>,
    schedule_backup_incremental: Option<String>,
    schedule_backup_verify: Option<String>,
    job_retry_delays: Option<String>,
    evaluation_retention: Option<u64>,
    trusted_proxies: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    header_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    body_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_streams: Option<usize>,
    max_streams_per_token: Option<usize>,
    max_context_members: Option<usize>,
    shutdown_grace: Option<u64>,
    metrics_token: Option<String>,
    metrics_listen: Option<SocketAddr>,
    metrics_max_flags: Option<usize>,
    access_log: Option<String>,
    access_log_sample_evaluations: Option<f64>,
    session_idle_timeout: Option<u64>,
    session_max_age: Option<u64>,
    lockout_after: Option<u32>,
    lockout_duration: Option<u64>,
    password_hashers: Option<usize>,
    mfa_required_for_admins: Option<bool>,
    mfa_required_for_protected: Option<bool>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_redirect_url: Option<String>,
    oidc_scopes: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_jwks_url: Option<String>,
    jwt_algorithms: Option<String>,
    jwt_leeway: Option<u64>,
    backup_to: Option<String>,
    backup_s3_endpoint: Option<String>,
    backup_s3_region: Option<String>,
    backup_s3_allow_http: Option<bool>,
    backup_keep_full: Option<usize>,
    backup_keep_incremental: Option<usize>,
    report_webhook_url: Option<String>,
    schedule_report_webhook: Option<String>,
    /// `[[role_mappings]]`: JWT claims → roles (`hata_access::claims::RoleRule`).
    #[serde(default)]
    role_mappings: Vec<hata_access::claims::RoleRule>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub store: StoreSettings,
    pub body_limit: usize,
    pub json_logs: bool,
    pub public_url: Option<String>,
    pub eval_rate_limit: u32,
    /// The admin API's and logins' budgets, and the Redis that shares them.
    pub rate_limits: hata_server::limits::LimitsConfig,
    /// How old API tokens may get.
    pub token_ages: hata_access::token::TokenAges,
    /// The scheduled jobs (`--jobs-enabled`, `--schedule-*`, `--job-retry-delays`,
    /// `--evaluation-retention`), with the retention job registered.
    pub jobs: hata_jobs::JobsConfig,
    pub trusted_proxies: hata_server::forwarded::TrustedProxies,
    /// The certificate and key files to serve HTTPS with; `None`: plain HTTP. Read (and
    /// checked) by `serve`, before it binds.
    pub tls: Option<hata_server::connections::tls::TlsFiles>,
    pub limits: Limits,
    /// `HATA_ADMIN_TOKEN`: the admin token to create on the first start. Environment only, so
    /// the secret stays out of the process list and config files.
    pub admin_token: Option<String>,
    /// `HATA_ADMIN_EMAIL` and `HATA_ADMIN_PASSWORD`: the admin user to create on the first
    /// start. Environment only, like the admin token.
    pub admin_user: Option<(String, String)>,
    pub identity: hata_server::auth::identity::IdentityConfig,
    /// The JWT issuer's verifier (`--jwt-*`, `role_mappings`); `None`: JWTs are not accepted.
    pub jwt: Option<std::sync::Arc<hata_server::auth::jwt::JwtVerifier>>,
    pub metrics: MetricsSettings,
    pub access_log: hata_server::dispatch::access_log::AccessLogConfig,
    pub backup: BackupSettings,
}

/// The resolved connection and stream limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_streams: usize,
    pub max_streams_per_token: usize,
    pub max_context_members: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl LimitArgs {
    fn resolve_with(self, file: &FileSettings) -> anyhow::Result<Limits> {
        let seconds = |name: &str, env: &str, value: Option<u64>, default: u64| {
            let value = value.unwrap_or(default);
            if value == 0 {
                bail!("{name} ({env}) must be at least 1 second");
            }
            Ok(Duration::from_secs(value))
        };
        let count = |name: &str, env: &str, value: Option<usize>, default: usize| {
            let value = value.unwrap_or(default);
            if value == 0 {
                bail!("{name} ({env}) must be at least 1");
            }
            Ok(value)
        };
        Ok(Limits {
            header_timeout: seconds(
                "header_timeout",
                "HATA_HEADER_TIMEOUT",
                self.header_timeout.or(file.header_timeout),
                10,
            )?,
            idle_timeout: seconds(
                "idle_timeout",
                "HATA_IDLE_TIMEOUT",
                self.idle_timeout.or(file.idle_timeout),
                75,
            )?,
            body_timeout: seconds(
                "body_timeout",
                "HATA_BODY_TIMEOUT",
                self.body_timeout.or(file.body_timeout),
                30,
            )?,
            shutdown_grace: seconds(
                "shutdown_grace",
                "HATA_SHUTDOWN_GRACE",
                self.shutdown_grace.or(file.shutdown_grace),
                20,
            )?,
            max_connections: count(
                "max_connections",
                "HATA_MAX_CONNECTIONS",
                self.max_connections.or(file.max_connections),
                10_000,
            )?,
            max_streams: count(
                "max_streams",
                "HATA_MAX_STREAMS",
                self.max_streams.or(file.max_streams),
                10_000,
            )?,
            max_streams_per_token: count(
                "max_streams_per_token",
                "HATA_MAX_STREAMS_PER_TOKEN",
                self.max_streams_per_token.or(file.max_streams_per_token),
                2_000,
            )?,
            max_context_members: count(
                "max_context_members",
                "HATA_MAX_CONTEXT_MEMBERS",
                self.max_context_members.or(file.max_context_members),
                hata_core::context::MAX_MEMBERS,
            )?,
        })
    }
}

impl StoreArgs {
    /// The store settings alone (`export`, `import`).
    pub fn resolve(self) -> anyhow::Result<StoreSettings> {
        let file = read_file(self.config.as_deref())?;
        self.resolve_with(&file)
    }

    fn resolve_with(self, file: &FileSettings) -> anyhow::Result<StoreSettings> {
        let data_dir = self
            .data_dir
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./hata-data"));
        let database_url = self
            .database_url
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("hata.db").display()));
        let db_max_connections = self
            .db_max_connections
            .or(file.db_max_connections)
            .unwrap_or(8);
        if db_max_connections == 0 {
            bail!("db_max_connections (HATA_DB_MAX_CONNECTIONS) must be at least 1");
        }
        let sqlite_synchronous = match self
            .sqlite_synchronous
            .or_else(|| file.sqlite_synchronous.clone())
        {
            None => hata_store::SqliteSynchronous::default(),
            Some(value) => hata_store::SqliteSynchronous::parse(&value).with_context(|| {
                format!(
                    "sqlite_synchronous (HATA_SQLITE_SYNCHRONOUS) must be {}, got {value:?}",
                    hata_store::SqliteSynchronous::NAMES.join(" or ")
                )
            })?,
        };
        let audit_key = self
            .audit_key
            .or_else(|| file.audit_key.clone())
            .unwrap_or_else(|| data_dir.join("audit-signing-key.pem"));
        let audit_checkpoint_every = self
            .audit_checkpoint_every
            .or(file.audit_checkpoint_every)
            .unwrap_or(1000);
        if audit_checkpoint_every == 0 {
            bail!("audit_checkpoint_every (HATA_AUDIT_CHECKPOINT_EVERY) must be at least 1");
        }
        Ok(StoreSettings {
            data_dir,
            database_url,
            db_max_connections,
            sqlite_synchronous,
            audit_key,
            audit_checkpoint_every,
        })
    }
}

fn read_file(path: Option<&std::path::Path>) -> anyhow::Result<FileSettings> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("config: cannot read {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("config: {} is not valid", path.display()))
        }
        None => Ok(FileSettings::default()),
    }
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file = read_file(self.store.config.as_deref())?;
        let store = self.store.resolve_with(&file)?;
        let limits = self.limits.resolve_with(&file)?;
        let identity = self.identity.resolve_with(&file)?;
        let jwt = self.jwt.resolve_with(&file)?;
        let metrics = self.metrics.resolve_with(&file)?;
        let audit_retention_days = self.audit_retention.or(file.audit_retention).unwrap_or(0);
        let backup = self.backup.resolve_with(&file)?;
        let prune_backups = backup
            .to
            .as_ref()
            .map(|destination| crate::backup_jobs::prune_step(destination, backup.keep));
        let mut jobs = self
            .jobs
            .resolve_with(&file, audit_retention_days, prune_backups)?;
        let access_log = self.access_log.resolve_with(&file)?;
        // With a destination, the backup jobs exist (their schedules are the jobs' settings).
        if let Some(destination) = &backup.to {
            crate::backup_jobs::register(&mut jobs, destination, backup.keep);
        }
        if !file.role_mappings.is_empty() && jwt.is_none() && identity.sso.is_none() {
            bail!("role_mappings are set but neither jwt_issuer nor oidc_issuer is: they map the claims of their tokens");
        }
        let admin_user = match (
            std::env::var("HATA_ADMIN_EMAIL").ok(),
            std::env::var("HATA_ADMIN_PASSWORD").ok(),
        ) {
            (None, None) => None,
            (Some(email), Some(password)) => Some((email, password)),
            (Some(_), None) => bail!("HATA_ADMIN_EMAIL is set but HATA_ADMIN_PASSWORD is not"),
            (None, Some(_)) => bail!("HATA_ADMIN_PASSWORD is set but HATA_ADMIN_EMAIL is not"),
        };
        // Checked here, with the other settings, so that a bad one fails the start before
        // anything is created or migrated.
        let admin_token = std::env::var("HATA_ADMIN_TOKEN").ok();
        if admin_token
            .as_ref()
            .is_some_and(|t| t.chars().count() < hata_server::bootstrap::MIN_ADMIN_SECRET_CHARS)
        {
            bail!(
                "HATA_ADMIN_TOKEN must be at least {} characters",
                hata_server::bootstrap::MIN_ADMIN_SECRET_CHARS
            );
        }
        let body_limit = self.body_limit.or(file.body_limit).unwrap_or(1 << 20);
        if body_limit < 1024 {
            bail!("body_limit (HATA_BODY_LIMIT) must be at least 1024 bytes, got {body_limit}");
        }
        let json_logs = match self.log_format.or(file.log_format).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                bail!("log_format (HATA_LOG_FORMAT) must be text or json, got {other:?}")
            }
        };
        let trusted_proxies = hata_server::forwarded::TrustedProxies::parse(
            self.trusted_proxies
                .as_deref()
                .or(file.trusted_proxies.as_deref())
                .unwrap_or(""),
        )
        .map_err(|e| anyhow::anyhow!("trusted_proxies (HATA_TRUSTED_PROXIES): {e}"))?;
        let tls = match (
            self.tls.tls_cert.or(file.tls_cert),
            self.tls.tls_key.or(file.tls_key),
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(hata_server::connections::tls::TlsFiles { cert, key }),
            (Some(_), None) => bail!(
                "tls_key (--tls-key / HATA_TLS_KEY) is not set: tls_cert needs the private key \
                 of its certificate"
            ),
            (None, Some(_)) => bail!(
                "tls_cert (--tls-cert / HATA_TLS_CERT) is not set: tls_key needs the \
                 certificate it belongs to"
            ),
        };
        let public_url = self.public_url.or(file.public_url);
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!(
                    "public_url (HATA_PUBLIC_URL) must start with http:// or https://, got {url:?}"
                );
            }
        }
        Ok(Settings {
            limits,
            trusted_proxies,
            tls,
            public_url,
            eval_rate_limit: self.eval_rate_limit.or(file.eval_rate_limit).unwrap_or(0),
            jobs,
            token_ages: hata_access::token::TokenAges::with_max_age_days(
                self.token_max_age_days
                    .or(file.token_max_age_days)
                    .unwrap_or(90),
            ),
            rate_limits: hata_server::limits::LimitsConfig {
                admin_per_minute: self
                    .admin_rate_limit
                    .or(file.admin_rate_limit)
                    .unwrap_or(100),
                login_per_minute: self
                    .login_rate_limit
                    .or(file.login_rate_limit)
                    .unwrap_or(10),
                redis_url: self.redis_url.or(file.redis_url).filter(|u| !u.is_empty()),
            },
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7070))),
            store,
            body_limit,
            json_logs,
            admin_token,
            admin_user,
            identity,
            jwt,
            metrics,
            access_log,
            backup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(file: &str, args: JwtArgs) -> anyhow::Result<Option<String>> {
        let file: FileSettings = toml::from_str(file)?;
        Ok(args.resolve_with(&file)?.map(|v| format!("{v:?}")))
    }

    fn none() -> JwtArgs {
        JwtArgs {
            jwt_issuer: None,
            jwt_audience: None,
            jwt_jwks_url: None,
            jwt_algorithms: None,
            jwt_leeway: None,
        }
    }

    #[test]
    fn jwt_settings_come_from_the_file_and_flags() {
        assert_eq!(jwt("", none()).unwrap(), None);
        let file = r#"
            jwt_issuer = "https://id.example.com"
            jwt_audience = "hata"
            jwt_algorithms = "ES256, EdDSA"

            [[role_mappings]]
            claim = "groups"
            value = "flag-admins"
            admin = true

            [[role_mappings]]
            claim = "groups"
            value = "shop-editors"
            project = "shop"
            role = "editor"
        "#;
        let got = jwt(file, none()).unwrap().expect("a verifier");
        assert!(got.contains("https://id.example.com"), "{got}");
        // A flag wins over the file.
        let args = JwtArgs {
            jwt_jwks_url: Some("https://keys.example.com/jwks.json".into()),
            ..none()
        };
        let got = jwt(file, args).unwrap().expect("a verifier");
        assert!(got.contains("keys.example.com"), "{got}");
    }

    #[test]
    fn metrics_settings_come_from_the_file_and_flags_and_are_checked() {
        let resolve = |file: &str, args: MetricsArgs| {
            let file: FileSettings = toml::from_str(file).expect("TOML");
            args.resolve_with(&file)
        };
        let none = || MetricsArgs {
            metrics_token: None,
            metrics_listen: None,
            metrics_max_flags: None,
        };
        let default = resolve("", none()).unwrap();
        assert_eq!(default.listen, None);
        assert!(default.config.on_main && default.config.token.is_none());
        assert_eq!(default.config.max_flags, 1000);
        let file = r#"
            metrics_token = "0123456789abcdef-file"
            metrics_listen = "127.0.0.1:9090"
            metrics_max_flags = 50
        "#;
        let from_file = resolve(file, none()).unwrap();
        assert_eq!(from_file.listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert!(
            !from_file.config.on_main,
            "a listener of its own takes it off the main one"
        );
        assert_eq!(
            from_file.config.token.as_deref(),
            Some("0123456789abcdef-file")
        );
        assert_eq!(from_file.config.max_flags, 50);
        let args = MetricsArgs {
            metrics_max_flags: Some(7),
            metrics_token: Some("0123456789abcdef-flag".into()),
            ..none()
        };
        let flags_win = resolve(file, args).unwrap();
        assert_eq!(flags_win.config.max_flags, 7);
        assert_eq!(
            flags_win.config.token.as_deref(),
            Some("0123456789abcdef-flag")
        );
        for (file, says) in [
            ("metrics_max_flags = 0", "metrics_max_flags"),
            ("metrics_token = \"short\"", "metrics_token"),
        ] {
            let err = resolve(file, none()).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{file}: {err:#}");
        }
    }

    #[test]
    fn job_settings_come_from_the_file_and_flags_and_are_checked() {
        let none = || JobArgs {
            jobs_enabled: None,
            schedule_retention: None,
            schedule_backup_full: None,
            schedule_backup_incremental: None,
            schedule_backup_verify: None,
            job_retry_delays: None,
            evaluation_retention: None,
            report_webhook_url: None,
            schedule_report_webhook: None,
        };
        let resolve = |file: &str, args: JobArgs| {
            let file: FileSettings = toml::from_str(file).expect("TOML");
            args.resolve_with(&file, 0, None)
        };
        let defaults = resolve("", none()).unwrap();
        assert!(defaults.enabled);
        assert_eq!(defaults.schedules["backup-full"].as_str(), "0 2 * * *");
        assert_eq!(
            defaults.schedules["backup-incremental"].as_str(),
            "0 * * * *"
        );
        assert_eq!(defaults.schedules["retention"].as_str(), "0 4 * * *");
        assert_eq!(defaults.retry, hata_jobs::RetryPolicy::default());
        assert_eq!(defaults.registered().collect::<Vec<_>>(), ["retention"]);
        let file = r#"
            jobs_enabled = false
            schedule_retention = "30 1 * * *"
            schedule_backup_verify = "off"
            job_retry_delays = "1m,2m"
            evaluation_retention = 7
        "#;
        let from_file = resolve(file, none()).unwrap();
        assert!(!from_file.enabled);
        assert_eq!(from_file.schedules["retention"].as_str(), "30 1 * * *");
        assert!(from_file.schedules["backup-verify"].is_off());
        assert_eq!(from_file.retry.delays.len(), 2);
        let args = JobArgs {
            schedule_retention: Some("0 5 * * *".into()),
            jobs_enabled: Some(true),
            ..none()
        };
        let flags_win = resolve(file, args).unwrap();
        assert!(flags_win.enabled);
        assert_eq!(flags_win.schedules["retention"].as_str(), "0 5 * * *");
        for (file, says) in [
            (
                "schedule_backup_full = \"0 25 * * *\"",
                "schedule_backup_full",
            ),
            ("schedule_retention = \"daily\"", "HATA_SCHEDULE_RETENTION"),
            ("job_retry_delays = \"5 minutes\"", "job_retry_delays"),
            (
                "report_webhook_url = \"ftp://hooks.example.com/secret-path\"",
                "report_webhook_url",
            ),
            (
                "schedule_report_webhook = \"mornings\"",
                "schedule_report_webhook",
            ),
        ] {
            let err = resolve(file, none()).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{file}: {err:#}");
            assert!(!format!("{err:#}").contains("secret-path"), "{err:#}");
        }
        // A webhook registers its job, with its default schedule.
        let hooked = resolve(
            "report_webhook_url = \"https://hooks.example.com/services/x\"",
            none(),
        )
        .unwrap();
        assert_eq!(
            hooked.registered().collect::<Vec<_>>(),
            ["report-webhook", "retention"]
        );
        assert_eq!(hooked.schedules["report-webhook"].as_str(), "0 7 * * *");
    }

    #[test]
    fn backup_generations_default_to_30_and_24_and_zero_is_refused() {
        let resolve = |file: &str, full: Option<usize>| {
            let file: FileSettings = toml::from_str(file).expect("TOML");
            BackupArgs {
                backup_to: None,
                backup_s3_endpoint: None,
                backup_s3_region: None,
                backup_s3_allow_http: None,
                backup_keep_full: full,
                backup_keep_incremental: None,
            }
            .resolve_with(&file)
        };
        assert_eq!(
            resolve("", None).unwrap().keep,
            hata_backup::Generations::default()
        );
        let keep = resolve("backup_keep_full = 7\nbackup_keep_incremental = 12", None)
            .unwrap()
            .keep;
        assert_eq!((keep.full, keep.incremental), (7, 12));
        assert_eq!(
            resolve("backup_keep_full = 7", Some(3)).unwrap().keep.full,
            3,
            "the flag wins"
        );
        let err = resolve("backup_keep_incremental = 0", None).unwrap_err();
        assert!(
            format!("{err:#}").contains("HATA_BACKUP_KEEP_INCREMENTAL"),
            "{err:#}"
        );
        let err = resolve("", Some(0)).unwrap_err();
        assert!(format!("{err:#}").contains("backup_keep_full"), "{err:#}");
    }

    #[test]
    fn access_log_settings_come_from_the_file_and_flags_and_are_checked() {
        let resolve = |file: &str, args: AccessLogArgs| {
            let file: FileSettings = toml::from_str(file).expect("TOML");
            args.resolve_with(&file)
        };
        let none = || AccessLogArgs {
            access_log: None,
            access_log_sample_evaluations: None,
        };
        let default = resolve("", none()).unwrap();
        assert!(default.enabled);
        assert_eq!(default.sample_evaluations, 0.01);
        let file = "access_log = \"off\"\naccess_log_sample_evaluations = 0.5";
        let from_file = resolve(file, none()).unwrap();
        assert!(!from_file.enabled);
        assert_eq!(from_file.sample_evaluations, 0.5);
        let args = AccessLogArgs {
            access_log: Some("on".into()),
            access_log_sample_evaluations: Some(1.0),
        };
        let flags_win = resolve(file, args).unwrap();
        assert!(flags_win.enabled);
        assert_eq!(flags_win.sample_evaluations, 1.0);
        for (file, says) in [
            ("access_log = \"yes\"", "access_log (HATA_ACCESS_LOG)"),
            (
                "access_log_sample_evaluations = 1.5",
                "access_log_sample_evaluations",
            ),
            (
                "access_log_sample_evaluations = -0.1",
                "access_log_sample_evaluations",
            ),
        ] {
            let err = resolve(file, none()).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{file}: {err:#}");
        }
    }

    #[test]
    fn bad_jwt_settings_fail_naming_the_setting() {
        let cases = [
            ("jwt_audience = \"hata\"", "jwt_issuer"),
            ("jwt_issuer = \"https://id.example.com\"", "jwt_audience"),
            (
                "jwt_issuer = \"https://id.example.com\"\njwt_audience = \"h\"\njwt_algorithms = \"HS256\"",
                "jwt_algorithms",
            ),
            (
                "jwt_issuer = \"id.example.com\"\njwt_audience = \"h\"",
                "--jwt-issuer",
            ),
            (
                "jwt_issuer = \"https://id.example.com\"\njwt_audience = \"h\"\n[[role_mappings]]\nclaim = \"g\"\nvalue = \"v\"\nrole = \"owner\"",
                "exactly one of",
            ),
        ];
        for (file, says) in cases {
            let err = jwt(file, none()).unwrap_err();
            assert!(
                format!("{err:#}").contains(says),
                "{file}: {err:#} should name {says}"
            );
        }
    }
}
