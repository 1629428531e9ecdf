//! `hata audit verify | public-key`: the audit log's verification, on the store or offline
//! on an export (`GET /api/v1/audit/export`), where it needs nothing but the file and,
//! to check signatures, the public key.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;
use hata_audit::{CheckpointPolicy, PublicKey, Report, Verifier};

use crate::config::StoreArgs;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit chain and name the first bad entry and why (exit 1 if any).
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Print the Ed25519 public key that verifies the checkpoints (PEM).
    PublicKey(PublicKeyArgs),
}

const VERIFY_HELP: &str = "\
Without --from-file it verifies the store (the same store settings as `serve`) with the key
the servers sign with. With --from-file it needs no database and no server: only the export
and, to check the checkpoints' signatures, the public key (`hata audit public-key`, or
GET /api/v1/audit/public-key). Without a public key, signatures are not checked and a
rewritten chain is not detected; the report says so.

Examples:
  curl -H \"Authorization: Bearer $TOKEN\" https://flags.example.com/api/v1/audit/export > audit.jsonl
  hata audit verify --from-file audit.jsonl --public-key audit-public-key.pem";

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// An export (JSON Lines) to verify instead of the store; `-` reads standard input
    #[arg(long)]
    from_file: Option<std::path::PathBuf>,
    /// The public key that checkpoints must be signed with: a file holding it, or the PEM
    /// text itself (`--public-key "$(cat key.pem)"`) [default: the store's own, without
    /// --from-file]
    // The PEM text starts with `-----`: taken as the value, not as another option.
    #[arg(long, allow_hyphen_values = true)]
    public_key: Option<String>,
    /// With --from-file: a checkpoint must follow every entry whose seq is a multiple of
    /// this (the servers' audit_checkpoint_every); 0 = do not check [default: 1000]
    #[arg(long)]
    checkpoint_every: Option<u64>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(args) => verify(args).await,
        AuditCommand::PublicKey(args) => {
            let settings = args.store.resolve()?;
            let (key, _) = hata_server::bootstrap::audit_signing_key(&settings.audit_key)?;
            print!("{}", key.public_key().to_pem()?);
            Ok(())
        }
    }
}

fn public_key(text_or_path: &str) -> anyhow::Result<PublicKey> {
    let pem = if text_or_path.trim_start().starts_with("-----BEGIN") {
        text_or_path.to_string()
    } else {
        std::fs::read_to_string(text_or_path)
            .with_context(|| format!("--public-key: cannot read {text_or_path}"))?
    };
    PublicKey::from_pem(&pem).with_context(|| "--public-key: not an Ed25519 public key in PEM")
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let key = args.public_key.as_deref().map(public_key).transpose()?;
    let report = match &args.from_file {
        Some(path) => verify_file(path, key, args.checkpoint_every.unwrap_or(1000))?,
        None => {
            let settings = args.store.resolve()?;
            let store = crate::open_existing_store(&settings).await?;
            let report = store.verify_audit_with(key).await?;
            store.close().await;
            report
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    match &report.first_bad {
        None => {
            if !report.signatures_checked {
                eprintln!(
                    "the chain's hashes verify, but no public key was given: checkpoint signatures were not checked"
                );
            }
            Ok(())
        }
        Some(bad) => anyhow::bail!("the audit log does not verify: {bad}"),
    }
}

/// Streams the export through the verifier, a line at a time (an export of millions of
/// entries needs no more memory than one).
fn verify_file(
    path: &std::path::Path,
    key: Option<PublicKey>,
    every: u64,
) -> anyhow::Result<Report> {
    let mut reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("--from-file: cannot open {}", path.display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let mut verifier = Verifier::new();
    if let Some(key) = key {
        verifier = verifier.with_public_key(key);
    }
    if every > 0 {
        verifier = verifier.with_policy(CheckpointPolicy { every });
    }
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("--from-file: cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        verifier.push_line_bytes(&line);
        if verifier.failed() {
            break;
        }
    }
    Ok(verifier.finish())
}
