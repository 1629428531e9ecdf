//! Cross-process change notices on PostgreSQL: writers `pg_notify` inside the write
//! transaction; every replica runs `relay`, which LISTENs and republishes what it hears to its
//! local subscribers. A replica also hears its own notices; subscribers ignore revisions they
//! already have, so that costs nothing but a comparison.

use std::sync::Weak;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::ChangeNotice;

/// The NOTIFY channel.
pub(crate) const CHANNEL: &str = "hata_changes";

/// How long to wait before reconnecting after the connection failed.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// How often an idle relay checks whether its store still exists.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub(crate) async fn relay(url: String, notices: broadcast::Sender<ChangeNotice>, alive: Weak<()>) {
    let mut was_down = false;
    while alive.strong_count() > 0 {
        match listen_once(&url, &notices, &alive).await {
            Ok(()) => return,
            Err(e) => {
                if !was_down {
                    tracing::warn!(error = %e, "change listener lost its connection; reconnecting");
                }
                was_down = true;
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}

/// One connection's life: LISTEN, announce a resync (anything may have been missed before),
/// relay until the connection fails (`Err`) or the store is gone (`Ok`).
async fn listen_once(
    url: &str,
    notices: &broadcast::Sender<ChangeNotice>,
    alive: &Weak<()>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    tracing::info!("listening for changes from other replicas");
    let _ = notices.send(ChangeNotice::Resync);
    loop {
        if alive.strong_count() == 0 {
            return Ok(());
        }
        let next = match tokio::time::timeout(IDLE_CHECK, listener.try_recv()).await {
            Err(_) => continue,
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
