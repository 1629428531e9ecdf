//! The first admin token. On a store without any token, the server cannot be administered, so
//! at start `hata serve` creates one: the secret the operator gave (`HATA_ADMIN_TOKEN`), or a
//! generated one written to `<data-dir>/admin-token` (mode 0600). The integration tests start
//! their servers through this same function.
//!
//! It does nothing on a store that has tokens: the given secret is only read on the first start.

use std::io::Write;
use std::path::{Path, PathBuf};

use hata_store::{Actor, NewToken, Store, StoreError, TokenKind, WriteMeta, WriteOp};

use hata_access::MintedToken;

/// The shortest admin secret accepted from the operator.
pub const MIN_ADMIN_SECRET_CHARS: usize = 16;

/// The file, inside the data directory, that receives a generated admin secret.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{field}: {message}")]
    BadUser {
        field: &'static str,
        message: String,
    },
    #[error("HATA_ADMIN_TOKEN must be at least {MIN_ADMIN_SECRET_CHARS} characters")]
    SecretTooShort,
    #[error("cannot write the admin token to {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `bootstrap_admin_token` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// The store already had tokens; nothing was changed.
    Existing,
    /// The given secret is now the admin token.
    Given,
    /// A secret was generated, stored as the admin token and written to `path`.
    Generated { secret: String, path: PathBuf },
}

/// On a store without tokens, makes `given` (or a generated secret) the admin token; see the
/// module doc. A generated secret is written to `<data_dir>/admin-token` before the token is
/// stored, so a failed write never leaves an admin token whose secret nobody has.
pub async fn bootstrap_admin_token(
    store: &Store,
    given: Option<&str>,
    data_dir: &Path,
) -> Result<AdminBootstrap, BootstrapError> {
    if !store.list_tokens().await?.is_empty() {
        return Ok(AdminBootstrap::Existing);
    }
    let (minted, outcome) = match given {
        Some(s) if s.chars().count() < MIN_ADMIN_SECRET_CHARS => {
            return Err(BootstrapError::SecretTooShort)
        }
        Some(s) => (
            MintedToken::with_secret(s.to_string()),
            AdminBootstrap::Given,
        ),
        None => {
            let minted = MintedToken::generate(TokenKind::Admin);
            let path = data_dir.join(ADMIN_TOKEN_FILE);
            write_secret_file(&path, &minted.secret).map_err(|source| {
                BootstrapError::TokenFile {
                    path: path.clone(),
                    source,
                }
            })?;
            let secret = minted.secret.clone();
            (minted, AdminBootstrap::Generated { secret, path })
        }
    };
    let token = NewToken {
        role: None,
        id: minted.id,
        name: "bootstrap admin".into(),
        kind: TokenKind::Admin,
        project: None,
        environment: None,
        expires_at: None,
        secret_hash: minted.secret_hash,
    };
    let meta = WriteMeta::new(Actor::system("bootstrap"), "");
    match store.write(&meta, WriteOp::CreateToken { token }).await {
        Ok(_) => Ok(outcome),
        // Replicas starting together on one PostgreSQL all find no token and all try to create
        // it. A given secret gives every one of them the same hash, which is unique in the
        // store, so the losers of that race find the token already there, which is what they
        // wanted.
        Err(StoreError::AlreadyExists(_)) if outcome == AdminBootstrap::Given => {
            Ok(AdminBootstrap::Existing)
        }
        Err(e) => Err(e.into()),
    }
}

/// A user made outside the API (`hata user create`, the first-start bootstrap): the same
/// checks as `POST /users` (email, name, password policy), hashed, through the one write path.
pub async fn create_user(
    store: &Store,
    actor: Actor,
    email: &str,
    name: Option<&str>,
    password: &str,
    admin: bool,
) -> Result<hata_store::UserRecord, BootstrapError> {
    let email = hata_access::user::normalize_email(email).map_err(|m| BootstrapError::BadUser {
        field: "email",
        message: m.into(),
    })?;
    let name = name.unwrap_or(&email).to_string();
    if let Some(m) = hata_access::user::name_problem(&name) {
        return Err(BootstrapError::BadUser {
            field: "name",
            message: m.into(),
        });
    }
    hata_access::password::check(password, &email).map_err(|p| BootstrapError::BadUser {
        field: "password",
        message: p.to_string(),
    })?;
    let password_hash =
        hata_access::password::hash(password).map_err(|e| BootstrapError::BadUser {
            field: "password",
            message: e.to_string(),
        })?;
    let user = hata_store::NewUser {
        id: hata_access::user::new_id(),
        email,
        name,
        password_hash: Some(password_hash),
        admin,
    };
    let meta = WriteMeta::new(actor, "");
    let out = store.write(&meta, WriteOp::CreateUser { user }).await?;
    let id = out
        .value
        .as_ref()
        .and_then(|v| v["id"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok(store.get_user(&id).await?)
}

/// On a store without users, makes `email` with `password` an admin user (`HATA_ADMIN_EMAIL`,
/// `HATA_ADMIN_PASSWORD`). `None` when the store had users (nothing changed).
pub async fn bootstrap_admin_user(
    store: &Store,
    email: &str,
    password: &str,
) -> Result<Option<hata_store::UserRecord>, BootstrapError> {
    if store.has_users().await? {
        return Ok(None);
    }
    match create_user(
        store,
        Actor::system("bootstrap"),
        email,
        None,
        password,
        true,
    )
    .await
    {
        Ok(user) => Ok(Some(user)),
        // Replicas starting together: another one created it first.
        Err(BootstrapError::Store(StoreError::AlreadyExists(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the data directory `dir` (and missing parents) with mode 0700, whatever the umask:
/// it holds the SQLite database and the admin-token file, which are nobody else's business.
/// An existing directory is left as it is: its owner chose its mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    // The umask can only take bits away from 0700, the owner's own among them.
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Writes `secret` to `path`, readable by the owner only (also when the file existed before).
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` only applies to a file this call creates.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

/// Why the audit signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("audit_key: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit_key: cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit_key: {path} is not an Ed25519 private key in PEM (PKCS#8): {source}")]
    Parse {
        path: PathBuf,
        source: hata_audit::KeyError,
    },
}

/// The Ed25519 key that signs the audit log's checkpoints: read from `path`, or, when there
/// is no such file, generated and written there (mode 0600; `true` in the answer). Replicas
/// that start together race to create it: the loser reads the winner's.
pub fn audit_signing_key(path: &Path) -> Result<(hata_audit::SigningKey, bool), AuditKeyError> {
    let read = |path: &Path| -> Result<hata_audit::SigningKey, AuditKeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| AuditKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        hata_audit::SigningKey::from_pem(&pem).map_err(|source| AuditKeyError::Parse {
            path: path.to_path_buf(),
            source,
        })
    };
    if path.exists() {
        return Ok((read(path)?, false));
    }
    let key = hata_audit::SigningKey::generate(&mut rand::rngs::OsRng);
    let create = |e| AuditKeyError::Create {
        path: path.to_path_buf(),
        source: e,
    };
    let pem = key
        .to_pem()
        .map_err(|e| create(std::io::Error::other(e.to_string())))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(create)?;
    }
    // Written whole under a temporary name, then linked into place: a replica starting at
    // the same moment finds either no key or a complete one.
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(pem.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((key, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read(path)?, false)),
        Err(e) => Err(create(e)),
    }
}

/// Records the single sign-on configuration this server starts with in the audit log, when
/// it differs from the last one recorded (a provider added, changed or removed).
pub async fn record_sso_config(
    store: &Store,
    sso: Option<&crate::sso::Sso>,
) -> Result<(), StoreError> {
    let meta = WriteMeta::new(Actor::system("config"), "");
    store
        .write(
            &meta,
            WriteOp::ConfigureSso {
                config: sso.map(crate::sso::Sso::describe),
            },
        )
        .await
        .map(|_| ())
}
