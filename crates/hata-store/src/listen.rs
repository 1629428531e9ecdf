//! Cross-process change notices on PostgreSQL: writers `pg_notify` inside the write
//! transaction; every replica runs `relay`, which LISTENs and republishes what it hears to its
//! local subscribers. A replica also hears its own notices; subscribers ignore revisions they
//! already have, so that costs nothing but a comparison.
//!
//! The relay must notice a dead connection even when nothing arrives on it: a database that
//! stops, or a network that silently drops packets, leaves an idle LISTEN connection looking
//! healthy. So an idle relay pings its connection, every step has a deadline, and after any
//! failure it reconnects with backoff and announces `ChangeNotice::Resync`, because notices
//! sent while it was away are lost.

use std::sync::Weak;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::Executor;
use tokio::sync::broadcast;

use crate::ChangeNotice;

/// The NOTIFY channel.
pub(crate) const CHANNEL: &str = "hata_changes";

/// First wait before reconnecting; it doubles after each failed attempt, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between reconnect attempts. Short, because until the relay is back other
/// replicas' changes only arrive through the 10 s repair check.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// How long connecting and `LISTEN` may take. `PgListener::connect` has no deadline of its
/// own that suits us (its pool waits 30 s), and a black-holed address never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After this long without a notification the relay pings its connection; this is also how
/// often it checks whether its store still exists.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// How long a ping may take before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn relay(
    url: String,
    notices: broadcast::Sender<ChangeNotice>,
    alive: Weak<()>,
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut backoff = FIRST_BACKOFF;
    // Logged once per outage, not once per attempt: an outage of minutes would flood the log.
    let mut down_since: Option<std::time::Instant> = None;
    while alive.strong_count() > 0 {
        let mut connected = false;
        let result = listen_once(&url, &notices, &alive, &mut connected, &listening).await;
        listening.store(false, std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(e) => {
                if connected {
                    // It was up, so the next outage starts now and deserves its own warning.
                    backoff = FIRST_BACKOFF;
                    down_since = None;
                }
                if down_since.is_none() {
                    tracing::warn!(error = %e,
                        "change listener lost its connection; reconnecting (other replicas' \
                         changes arrive through the repair check meanwhile)");
                    down_since = Some(std::time::Instant::now());
                } else {
                    tracing::debug!(error = %e, "change listener still cannot connect");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection's life: LISTEN, announce a resync (anything may have been missed before),
/// relay until the connection fails (`Err`) or the store is gone (`Ok`). Sets `connected` once
/// it is listening.
async fn listen_once(
    url: &str,
    notices: &broadcast::Sender<ChangeNotice>,
    alive: &Weak<()>,
    connected: &mut bool,
    listening: &std::sync::atomic::AtomicBool,
) -> Result<(), sqlx::Error> {
    let mut listener = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut listener = PgListener::connect(url).await?;
        // Report a lost connection at once instead of reconnecting inside `try_recv` (which
        // waits up to 30 s): every reconnect goes through here, with a deadline and a resync.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    })
    .await
    .map_err(|_| sqlx::Error::PoolTimedOut)??;
    *connected = true;
    listening.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("listening for changes from other replicas");
    // Sent after LISTEN took effect: whatever a subscriber reloads now cannot miss a change
    // that commits later, because that change's notice will arrive.
    let _ = notices.send(ChangeNotice::Resync);
    loop {
        if alive.strong_count() == 0 {
            return Ok(());
        }
        let next = match tokio::time::timeout(IDLE_CHECK, listener.try_recv()).await {
            Err(_) => {
                // Idle: make sure the connection is still there.
                match tokio::time::timeout(PING_TIMEOUT, (&mut listener).execute("SELECT 1")).await
                {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        return Err(sqlx::Error::Protocol(
                            "listener connection did not answer a ping".into(),
                        ))
                    }
                }
            }
            Ok(next) => next?,
        };
        // `None`: the connection dropped. Start over on a fresh one, with a resync.
        let Some(notification) = next else {
            return Err(sqlx::Error::Protocol("listener connection closed".into()));
        };
        match serde_json::from_str::<ChangeNotice>(notification.payload()) {
            Ok(notice) => {
                let _ = notices.send(notice);
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed change notice");
            }
        }
    }
}
