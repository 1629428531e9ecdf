//! `hata user create`: a user made on the store directly, without a running server — the
//! first administrator of a new installation, or a way back in when nobody can log in. The
//! same checks as `POST /users` (`hata_server::bootstrap::create_user`), through the one write
//! path, recorded with the actor `system:cli`.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use crate::config::StoreArgs;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user on the store directly (its password is read from standard input with
    /// --password-stdin, or generated and printed once).
    #[command(after_help = CREATE_HELP)]
    Create(CreateArgs),
}

const CREATE_HELP: &str = "\
The password must have at least 12 characters and not be one of the 10,000 most common ones.
It is never taken from the command line (which other users of the machine can see): pipe it in
with --password-stdin, or let hata generate one and print it once. On PostgreSQL running
servers see the new user at once; on the embedded SQLite too (logins read the store).

Examples:
  hata user create --email ops@example.com --admin --data-dir ./hata-data
  printf '%s\\n' \"$PASSWORD\" | hata user create --email ann@example.com --name 'Ann Lee' --password-stdin";

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The user's email address (the login name)
    #[arg(long)]
    email: String,
    /// The display name [default: the email]
    #[arg(long)]
    name: Option<String>,
    /// Make the user an administrator (may do everything)
    #[arg(long)]
    admin: bool,
    /// Read the password from the first line of standard input
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => create(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (hata_access::password::generate(), true)
    };
    let settings = args.store.resolve()?;
    let store = crate::open_store(&settings).await?;
    let user = hata_server::bootstrap::create_user(
        &store,
        crate::token::cli_actor(),
        &args.email,
        args.name.as_deref(),
        &password,
        args.admin,
    )
    .await?;
    store.close().await;
    println!(
        "created {} {} ({}){}",
        if user.admin { "admin user" } else { "user" },
        user.email,
        user.id,
        if generated {
            format!("\npassword (shown once):\n{password}")
        } else {
            String::new()
        }
    );
    Ok(())
}
