//! `hata token create | list`: tokens managed on the store directly, without a running server
//! or an admin token. This is the offline recovery when no admin token works any more (all
//! expired, or the secrets lost): whoever can open the store can create one. The write goes
//! through the one write path like any other, recorded with the actor `system:cli`.

use anyhow::Context;
use clap::Subcommand;
use hata_access::token::{parse_expiry, Standing, TokenAges};
use hata_access::{MintedToken, TokenKind};
use hata_server::routes::tokens::TokenView;
use hata_store::{Actor, NewToken, WriteMeta, WriteOp};

use crate::config::StoreArgs;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an admin token on the store directly and print its secret (once).
    #[command(after_help = CREATE_HELP)]
    Create(CreateArgs),
    /// List tokens (never their secrets).
    List(ListArgs),
}

const CREATE_HELP: &str = "\
For recovery when no admin token works: it needs no server and no token, only access to the
store. On PostgreSQL running servers accept the new token at once; on the embedded SQLite,
restart `hata serve` for it to be accepted. The change record names the actor system:cli.

Example:
  hata token create --admin --name \"ops recovery\" --data-dir ./hata-data";

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Create an admin token (the only kind this command creates; the API creates the others)
    #[arg(long, required = true)]
    admin: bool,
    /// A name saying what the token is for
    #[arg(long, default_value = "created by hata token create")]
    name: String,
    /// When the token stops working: an RFC 3339 date-time, e.g. 2027-03-31T00:00:00Z
    #[arg(long)]
    expires_at: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only tokens that stop working within 14 days (their expiry or the maximum token age)
    /// or already did: what to rotate now
    #[arg(long)]
    due: bool,
    /// The maximum token age the servers enforce, in days; 0 = none [default: 90]
    #[arg(long, env = "HATA_TOKEN_MAX_AGE_DAYS")]
    token_max_age_days: Option<u64>,
    /// Print JSON (one array) instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(args).await,
        TokenCommand::List(args) => list(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    debug_assert!(args.admin, "clap requires --admin");
    let expires_at = args
        .expires_at
        .as_deref()
        .map(|t| parse_expiry(t, time::OffsetDateTime::now_utc()))
        .transpose()
        .map_err(|reason| anyhow::anyhow!("--expires-at: {reason}"))?;
    if args.name.chars().count() > 200 {
        anyhow::bail!("--name: must be at most 200 characters");
    }
    let settings = args.store.resolve()?;
    let store = crate::open_existing_store(&settings).await?;
    let minted = MintedToken::generate(TokenKind::Admin);
    let token = NewToken {
        role: None,
        id: minted.id.clone(),
        name: args.name,
        kind: TokenKind::Admin,
        project: None,
        environment: None,
        expires_at,
        secret_hash: minted.secret_hash,
    };
    let meta = WriteMeta::new(cli_actor(), "");
    let result = store.write(&meta, WriteOp::CreateToken { token }).await;
    store.close().await;
    result.context("cannot create the token")?;
    eprintln!(
        "created admin token {} (the secret is shown once):",
        minted.id
    );
    println!("{}", minted.secret);
    Ok(())
}

/// The actor of a change made from the command line: `system:cli`, named after the operating
/// system user who ran it, for whoever reads the record later.
pub(crate) fn cli_actor() -> Actor {
    let mut actor = Actor::system("cli");
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".into());
    actor.name = Some(format!("hata command line ({user})"));
    actor
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let settings = args.store.resolve()?;
    let store = crate::open_existing_store(&settings).await?;
    let tokens = store.list_tokens().await;
    store.close().await;
    let ages = TokenAges::with_max_age_days(args.token_max_age_days.unwrap_or(90));
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let views: Vec<TokenView> = tokens
        .context("cannot list tokens")?
        .into_iter()
        .map(|t| TokenView::of(t, ages, now))
        .filter(|v| !args.due || v.standing != Standing::Good.as_str())
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    println!(
        "{:<20}  {:<6}  {:<20}  {:<20}  {:<35}  NAME",
        "ID", "KIND", "PROJECT", "ENVIRONMENT", "STOPS WORKING"
    );
    for v in &views {
        let t = &v.token;
        let due = match (&v.due_at, v.standing) {
            (None, _) => "never".to_string(),
            (Some(at), "good") => at.clone(),
            (Some(at), standing) => format!("{at} ({})", standing.replace('_', " ")),
        };
        println!(
            "{:<20}  {:<6}  {:<20}  {:<20}  {:<35}  {}",
            t.id,
            t.kind.as_str(),
            t.project.as_deref().unwrap_or("-"),
            t.environment.as_deref().unwrap_or("-"),
            due,
            t.name
        );
    }
    Ok(())
}
