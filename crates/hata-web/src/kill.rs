//! What the kill switch tells once it is done, and when it may tell it.
//!
//! `AppState::write` commits, then reloads the touched rule sets before it returns; a reload
//! can fail or lag (it is retried by the change listener and the repair check). So the switch
//! (`flags::flip`) does not take "written" for "served": it waits, up to `SERVE_WAIT`, until
//! this replica's served snapshot of the environment has the write's revision
//! (`wait_served`), and the page it returns to says which happened (`Notice`): served now, or
//! written but not yet served here when the wait ran out. Other replicas follow through the
//! change notices within their propagation lag (`hata_propagation_lag_seconds`).

use std::time::Duration;

use hata_serving::Serving;
use hata_store::RuleSetWrite;
use maud::{html, Markup};

use crate::i18n::L;

/// How long a switch waits for its evaluations to serve the new state.
pub const SERVE_WAIT: Duration = Duration::from_secs(5);

/// Waits until this replica serves `project`/`environment` at the revision `write` gave it
/// (or a later one), at most `timeout`; whether it does. A write that bumped nothing there
/// (it changed nothing) is served already.
pub async fn wait_served(
    serving: &Serving,
    write: &RuleSetWrite,
    project: &str,
    environment: &str,
    timeout: Duration,
) -> bool {
    let Some(i) = write
        .revisions
        .iter()
        .position(|r| r.project == project && r.environment == environment)
    else {
        return true;
    };
    let revision = write.revisions[i].revision;
    let Some(&env_id) = write.env_ids.get(i) else {
        return false;
    };
    serving
        .wait_for(project, environment, env_id, revision, timeout)
        .await;
    serving
        .get(project, environment)
        .is_some_and(|e| e.env_id == env_id && e.revision >= revision)
}

/// What the last switch did, carried to the page it returns to as `?notice=` (the
/// post/redirect/get pattern: a reload does not post again). Only names and states, never
/// free text: a crafted link can make a page say a flag was switched, not say anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub on: bool,
    /// Evaluations on this server serve it (else the wait ran out).
    pub served: bool,
    pub environment: String,
    pub flag: String,
}

impl Notice {
    /// `switched:on:served:production:new-checkout`
    pub fn encode(&self) -> String {
        format!(
            "switched:{}:{}:{}:{}",
            if self.on { "on" } else { "off" },
            if self.served { "served" } else { "late" },
            self.environment,
            self.flag
        )
    }

    /// The notice `encode` wrote; `None` for anything else.
    pub fn parse(text: &str) -> Option<Notice> {
        let mut parts = text.splitn(5, ':');
        if parts.next()? != "switched" {
            return None;
        }
        let on = match parts.next()? {
            "on" => true,
            "off" => false,
            _ => return None,
        };
        let served = match parts.next()? {
            "served" => true,
            "late" => false,
            _ => return None,
        };
        let environment = parts.next()?;
        let flag = parts.next()?;
        let valid = hata_core::key::is_valid_key;
        (valid(environment) && valid(flag)).then(|| Notice {
            on,
            served,
            environment: environment.to_string(),
            flag: flag.to_string(),
        })
    }

    /// `back` with this notice in its query.
    pub fn onto(&self, back: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("notice", &self.encode());
        let sep = if back.contains('?') { '&' } else { '?' };
        format!("{back}{sep}{}", query.finish())
    }

    /// A status message at the top of the page (read out by screen readers when it appears).
    pub fn render(&self, l: L) -> Markup {
        let args = [
            ("flag", self.flag.as_str()),
            ("env", self.environment.as_str()),
        ];
        let text = match (self.on, self.served) {
            (true, true) => l.f("kill.on_served", &args),
            (false, true) => l.f("kill.off_served", &args),
            (true, false) => l.f("kill.on_late", &args),
            (false, false) => l.f("kill.off_late", &args),
        };
        let class = if self.served { "notice ok" } else { "notice" };
        html! { p #switch-notice class=(class) role="status" { (text) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn notice(on: bool, served: bool) -> Notice {
        Notice {
            on,
            served,
            environment: "production".into(),
            flag: "new-checkout_v2.1".into(),
        }
    }

    #[test]
    fn notices_round_trip_through_the_query() {
        for (on, served) in [(true, true), (true, false), (false, true), (false, false)] {
            let n = notice(on, served);
            assert_eq!(Notice::parse(&n.encode()), Some(n));
        }
        assert_eq!(
            notice(false, true).onto("/projects/p/flags?page=2"),
            "/projects/p/flags?page=2&notice=switched%3Aoff%3Aserved%3Aproduction%3Anew-checkout_v2.1"
        );
        assert!(notice(true, true)
            .onto("/projects/p/flags")
            .starts_with("/projects/p/flags?notice="));
    }

    #[test]
    fn anything_else_is_no_notice() {
        for text in [
            "",
            "switched",
            "switched:on:served:production",
            "switched:maybe:served:production:f",
            "switched:on:soon:production:f",
            "switched:on:served:Production:f",
            "switched:on:served:production:<b>",
            "other:on:served:production:f",
        ] {
            assert_eq!(Notice::parse(text), None, "{text}");
        }
    }

    #[test]
    fn the_message_says_whether_evaluations_serve_it() {
        let l = L::new(Lang::En);
        let served = notice(false, true).render(l).into_string();
        assert!(served.contains("role=\"status\""), "{served}");
        assert!(served.contains("new-checkout_v2.1") && served.contains("production"));
        let late = notice(false, false).render(l).into_string();
        assert_ne!(served, late);
        assert!(!late.contains("notice ok"));
    }
}
