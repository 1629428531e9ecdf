//! Budgets held in this process: the only ones without Redis, and the fallback while Redis
//! does not answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hata_access::rate::{decide, Decision, Quota};

/// Keys whose TAT is past are dropped when the map grows past this, so a flood of client
/// addresses cannot grow it without bound for longer than one period.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct LocalBudgets {
    tats: Mutex<HashMap<String, u64>>,
}

pub(super) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

impl LocalBudgets {
    pub fn check(&self, key: &str, quota: Quota) -> Decision {
        let now = now_micros();
        // A poisoned lock only means another request panicked mid-update of a number.
        let mut tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        if tats.len() >= SWEEP_AT {
            tats.retain(|_, tat| *tat > now);
        }
        let (decision, tat) = decide(quota, tats.get(key).copied(), now);
        tats.insert(key.to_string(), tat);
        decision
    }
}
