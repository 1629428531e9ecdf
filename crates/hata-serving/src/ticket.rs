//! Stream tickets: `EventSource` cannot send headers, so the OFREP event-stream URL carries a
//! short signed ticket instead of the token. A ticket names the token (by id, never its
//! secret), its project and environment, the revision the client last fetched, and an expiry;
//! it is signed with HMAC-SHA256 under a key shared by all replicas through the store. The
//! stream endpoint also checks that the token still exists, so revoking the token kills its
//! tickets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Tickets are issued per period (a UTC day) and stay valid until the end of the next one,
/// so 24–48 h: long enough for a browser's reconnects over a working day.
pub const TICKET_PERIOD_SECS: i64 = 24 * 3600;

/// The issuing period at `now` (Unix seconds) and the expiry of tickets issued in it.
///
/// The bulk ETag includes the period. A provider only picks up a new stream URL from a bulk
/// answer with a body, and re-validates with `If-None-Match` after its stream fails; were the
/// ETag the same across periods, a page whose ticket expired would get 304s, keep the dead URL
/// and never stream again until a flag changed. Ticket expiry and ETag change share one clock
/// edge, so by the time a ticket has expired, the ETag its holder knows is stale.
pub fn ticket_period(now: i64) -> (i64, i64) {
    let period = now.div_euclid(TICKET_PERIOD_SECS);
    (period, (period + 2) * TICKET_PERIOD_SECS)
}

/// The `meta` key under which the signing key is stored.
pub const KEY_META: &str = "stream_ticket_key";

/// What a ticket grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub token_id: String,
    pub project: String,
    pub environment: String,
    /// The rule set the client had when the ticket was issued.
    pub rule_set: crate::RuleSetId,
    /// Unix seconds.
    pub expires: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("the ticket is malformed")]
    Malformed,
    #[error("the ticket's signature does not match")]
    BadSignature,
    #[error("the ticket has expired")]
    Expired,
}

/// Signs and checks tickets.
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload);
        mac
    }

    /// `payload` with its HMAC, as URL-safe text (`<payload>.<tag>`, base64url): what this
    /// server (every replica: the key is in the store) hands out and checks back with `open`.
    /// Not encrypted: the payload is readable.
    pub fn sign(&self, payload: &[u8]) -> String {
        let tag = self.mac(payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The payload of something `sign` made with this key.
    pub fn open(&self, signed: &str) -> Result<Vec<u8>, TicketError> {
        let (payload, tag) = signed.split_once('.').ok_or(TicketError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TicketError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TicketError::Malformed)?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| TicketError::BadSignature)?;
        Ok(payload)
    }

    pub fn issue(&self, t: &Ticket) -> String {
        // Fields are keys (no `|` allowed by the key syntax) and numbers.
        let payload = format!(
            "1|{}|{}|{}|{}|{}|{}",
            t.token_id, t.project, t.environment, t.rule_set.env_id, t.rule_set.revision, t.expires
        );
        self.sign(payload.as_bytes())
    }

    pub fn verify(&self, ticket: &str, now: i64) -> Result<Ticket, TicketError> {
        let payload = self.open(ticket)?;
        let payload = String::from_utf8(payload).map_err(|_| TicketError::Malformed)?;
        let fields: Vec<&str> = payload.split('|').collect();
        let [version, token_id, project, environment, env_id, revision, expires] = fields[..]
        else {
            return Err(TicketError::Malformed);
        };
        if version != "1" {
            return Err(TicketError::Malformed);
        }
        let number = |s: &str| s.parse::<i64>().map_err(|_| TicketError::Malformed);
        let ticket = Ticket {
            token_id: token_id.to_string(),
            project: project.to_string(),
            environment: environment.to_string(),
            rule_set: crate::RuleSetId::new(number(env_id)?, number(revision)?),
            expires: number(expires)?,
        };
        if ticket.expires <= now {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_live_24_to_48_hours_and_the_period_turns_when_they_expire() {
        let day = TICKET_PERIOD_SECS;
        for now in [100 * day, 100 * day + 1, 101 * day - 1] {
            let (period, expires) = ticket_period(now);
            assert_eq!(period, 100);
            assert_eq!(expires, 102 * day);
            assert!(expires - now > day && expires - now <= 2 * day);
            // When a ticket issued now expires, the period (and so the bulk ETag) has moved on.
            assert_ne!(ticket_period(expires).0, period);
        }
    }

    fn ticket() -> Ticket {
        Ticket {
            token_id: "tok_0123456789abcdef".into(),
            project: "shop".into(),
            environment: "production".into(),
            rule_set: crate::RuleSetId::new(7, 42),
            expires: 2_000,
        }
    }

    #[test]
    fn a_ticket_round_trips() {
        let s = Signer::new(b"key");
        assert_eq!(s.verify(&s.issue(&ticket()), 1_000), Ok(ticket()));
    }

    #[test]
    fn expired_tampered_and_foreign_tickets_fail() {
        let s = Signer::new(b"key");
        let issued = s.issue(&ticket());
        assert_eq!(s.verify(&issued, 2_000), Err(TicketError::Expired));
        assert_eq!(
            Signer::new(b"other").verify(&issued, 1_000),
            Err(TicketError::BadSignature)
        );
        let (payload, tag) = issued.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap())
                .unwrap()
                .replace("production", "development"),
        );
        assert_eq!(
            s.verify(&format!("{forged}.{tag}"), 1_000),
            Err(TicketError::BadSignature)
        );
        assert_eq!(s.verify("nonsense", 1_000), Err(TicketError::Malformed));
    }
}
