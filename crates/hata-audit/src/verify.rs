//! The one verifier, for the store's rows (`GET /audit/verify`), exports and `hata audit
//! verify`: fed lines oldest first, it checks each as it comes and keeps only the previous
//! entry's links, so memory does not grow with the chain.
//!
//! It stops at the first problem and names it (`Bad`: the seq, the line, a `Reason`). For
//! each entry, in this order: well-formed (`malformed`), seq one more than the previous
//! (`gap`, or `reorder` when the seq goes back), `prev_hash` equal to the previous hash
//! (`broken_link`), own hash (`hash_mismatch`). For each checkpoint: signature, when a public
//! key is given (`bad_signature`), then its hash against the entry at its seq
//! (`checkpoint_mismatch`); a checkpoint line that comes after a later entry is
//! `misplaced_checkpoint`. With a `CheckpointPolicy`, a due seq without a checkpoint is
//! `missing_checkpoint`, reported once the entry after it has passed its own checks (so a
//! gap or broken link there, which says more, comes first). At the end, a checkpoint for a
//! seq past the last entry is `truncated`.
//!
//! Lines are read into a borrowed tree (`tree`), not `serde_json::Value`: that halves the
//! time (benches/verify.rs: a million entries of ~1 KB in about 7 s on one core).
//!
//! The first problem is where the chain stops verifying, which is not always where the
//! tampering was: an inserted entry whose links were computed correctly is only caught at the
//! entry after it (`broken_link`), and a rewritten chain tail only at the next checkpoint.
//! Entries after the last checkpoint are vouched for by nobody but the hashes: see
//! `Report::signed_through`.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::chain::{Hash, Head};
use crate::checkpoint::{Checkpoint, CheckpointPolicy};
use crate::key::{KeyId, PublicKey};
use crate::shape::{check_entry, Links};
use crate::tree::Json;

/// `{"checkpoint": {…}}`, the line of a checkpoint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: Checkpoint,
}

/// Why verification failed. `as_str` is stable (the API and scripts match on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A line is not JSON, not an object, or misses or mistypes a member.
    Malformed,
    /// An entry's hash is not the hash of its contents: a field was edited.
    HashMismatch,
    /// An entry's `prev_hash` is not the previous entry's hash: an entry was inserted, or
    /// the one before it rewritten.
    BrokenLink,
    /// A seq is missing: an entry was deleted.
    Gap,
    /// A seq is not larger than the one before: entries were swapped or duplicated.
    Reorder,
    /// A checkpoint's signature does not verify with the public key (another key, or an
    /// edited checkpoint).
    BadSignature,
    /// A checkpoint's hash is not the hash of the entry at its seq.
    CheckpointMismatch,
    /// A checkpoint line comes after a later entry, where its entry can no longer be checked.
    MisplacedCheckpoint,
    /// A checkpoint names a seq past the last entry: the chain's tail was cut.
    Truncated,
    /// The policy requires a checkpoint at this seq and there is none.
    MissingCheckpoint,
    /// The first entry is not seq 1 and no checkpoint at the seq before it vouches for its
    /// `prev_hash` (a failure only when a public key is given; otherwise `Start::Unanchored`).
    UnanchoredStart,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::HashMismatch => "hash_mismatch",
            Reason::BrokenLink => "broken_link",
            Reason::Gap => "gap",
            Reason::Reorder => "reorder",
            Reason::BadSignature => "bad_signature",
            Reason::CheckpointMismatch => "checkpoint_mismatch",
            Reason::MisplacedCheckpoint => "misplaced_checkpoint",
            Reason::Truncated => "truncated",
            Reason::MissingCheckpoint => "missing_checkpoint",
            Reason::UnanchoredStart => "unanchored_start",
        }
    }

    /// A sentence for a person.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Malformed => "the line is not a well-formed entry or checkpoint",
            Reason::HashMismatch => "the entry's contents do not match its hash (edited)",
            Reason::BrokenLink => {
                "the entry's prev_hash is not the previous entry's hash (inserted or rewritten)"
            }
            Reason::Gap => "an entry is missing (deleted)",
            Reason::Reorder => "the entry's seq does not increase (swapped or duplicated)",
            Reason::BadSignature => {
                "the checkpoint's signature does not verify with the public key (forged or edited)"
            }
            Reason::CheckpointMismatch => "the checkpoint's hash is not the entry's hash",
            Reason::MisplacedCheckpoint => "the checkpoint line does not follow its entry",
            Reason::Truncated => "a checkpoint names entries that are missing (tail cut)",
            Reason::MissingCheckpoint => "the checkpoint policy requires a checkpoint here",
            Reason::UnanchoredStart => {
                "the chain does not start at seq 1 and no signed checkpoint anchors its start"
            }
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    /// The seq where the chain stops verifying: the entry's or checkpoint's own, for a gap
    /// or reorder the seq that should have come, for `truncated` the first missing one. For
    /// a line too broken to read a seq from, the seq expected there (0 before any entry).
    pub seq: u64,
    /// 1-based position in what was pushed (the export's line number).
    pub line: u64,
    pub reason: Reason,
    /// More about a malformed line or a signature (which member, which key id).
    pub detail: Option<String>,
}

impl Serialize for Bad {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Bad", 5)?;
        s.serialize_field("seq", &self.seq)?;
        s.serialize_field("reason", &self.reason)?;
        s.serialize_field("message", self.reason.message())?;
        s.serialize_field("line", &self.line)?;
        if let Some(detail) = &self.detail {
            s.serialize_field("detail", detail)?;
        }
        s.end()
    }
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seq {} (line {}): {}: {}",
            self.seq,
            self.line,
            self.reason,
            self.reason.message()
        )?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// How the verified entries start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Start {
    /// At seq 1, linked to the genesis hash.
    Genesis,
    /// After the checkpoint at `seq` (a range or a pruned chain); `signature_checked` says
    /// whether its signature was verified (false without a public key).
    Anchored { seq: u64, signature_checked: bool },
    /// After seq `seq - 1`, with nothing to vouch for the first `prev_hash` (no public key
    /// was given, or it would have failed as `unanchored_start`).
    Unanchored { seq: u64 },
}

/// What verification found. Serialises as the API's `{ok, entries, head, …}` /
/// `{ok: false, entries, first_bad: {seq, reason, …}, …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    /// Entries verified (before the first problem, if any).
    pub entries: u64,
    /// The last verified entry's hash.
    pub head: Option<Hash>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub start: Option<Start>,
    /// Checkpoints matched against their entries (and, with a key, their signatures).
    pub checkpoints: u64,
    /// Whether checkpoint signatures were verified (a public key was given).
    pub signatures_checked: bool,
    /// The highest seq a verified signature vouches for; entries after it are vouched for
    /// only by hashes anyone can recompute.
    pub signed_through: Option<u64>,
    /// The policy's `every`, when missing checkpoints were looked for.
    pub policy_every: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<Bad>,
}

#[derive(Clone, Copy, Debug)]
struct Prev {
    head: Head,
    /// The previous position is a checkpoint before any entry, not an entry.
    anchor: bool,
    /// A checkpoint at this seq was seen (and matched).
    checkpointed: bool,
    /// For an anchor: its signature was verified.
    verified: bool,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    seq: u64,
    hash: Hash,
    line: u64,
    verified: bool,
}

/// Streaming verification; see the module docs.
#[derive(Debug, Default)]
pub struct Verifier {
    keys: Vec<(KeyId, PublicKey)>,
    policy: Option<CheckpointPolicy>,
    line: u64,
    prev: Option<Prev>,
    start: Option<Start>,
    first_seq: Option<u64>,
    entries: u64,
    checkpoints: u64,
    signed_through: Option<u64>,
    /// A seq jumped forward; the next entry tells a gap from a reorder.
    gap: Option<(Bad, u64)>,
    /// A checkpoint for a seq not reached yet (the highest such): matched when its entry
    /// comes, `truncated` if it never does.
    ahead: Option<Pending>,
    /// A due checkpoint was not after its entry. Reported at the next line unless that line
    /// is the checkpoint (then `misplaced_checkpoint`), and only once the entry after the due
    /// one has passed its own checks: a gap, reorder or broken link there says more about
    /// what happened than the checkpoint that went with the displaced rows.
    missing: Option<Bad>,
    bad: Option<Bad>,
    /// The canonical form of the entry being hashed, reused.
    buf: Vec<u8>,
}

impl Verifier {
    /// A verifier without a public key: checkpoints are matched against entries but their
    /// signatures cannot be checked, and `Report::signatures_checked` says so.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// Checks checkpoint signatures with `key` (call again to accept several keys, e.g.
    /// across a rotation; each checkpoint names its key id).
    pub fn with_public_key(mut self, key: PublicKey) -> Verifier {
        self.keys.push((key.key_id(), key));
        self
    }

    /// Requires a checkpoint after every entry whose seq `policy` says is due.
    pub fn with_policy(mut self, policy: CheckpointPolicy) -> Verifier {
        self.policy = Some(policy);
        self
    }

    /// Whether a problem has been found (later lines are then ignored).
    pub fn failed(&self) -> bool {
        self.bad.is_some()
    }

    /// Feeds one line of an export (without its newline; blank lines are skipped).
    pub fn push_line(&mut self, line: &str) {
        self.push_line_bytes(line.as_bytes());
    }

    /// As `push_line`, for bytes not known to be UTF-8 (invalid UTF-8 is `malformed`).
    pub fn push_line_bytes(&mut self, line: &[u8]) {
        self.line += 1;
        if self.bad.is_some() || line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.read_line(line);
    }

    /// Feeds an entry already parsed (e.g. a stored row's JSON; the row's text itself, given
    /// to `push_line`, is cheaper: this writes the value out to read it back).
    pub fn push_entry(&mut self, entry: &Value) {
        self.line += 1;
        if self.bad.is_some() {
            return;
        }
        match serde_json::to_vec(entry) {
            Ok(line) => self.read_line(&line),
            Err(e) => self.malformed(None, e.to_string()),
        }
    }

    /// Feeds a checkpoint (e.g. a stored row).
    pub fn push_checkpoint(&mut self, checkpoint: &Checkpoint) {
        self.line += 1;
        if self.bad.is_none() {
            self.checkpoint(checkpoint);
        }
    }

    /// The verdict, after the last line.
    pub fn finish(mut self) -> Report {
        if self.bad.is_none() {
            if let Some((bad, _)) = self.gap.take() {
                self.bad = Some(bad);
            } else if let Some(bad) = self.missing.take() {
                self.bad = Some(bad);
            } else if let Some(prev) = self.prev {
                if let Some(bad) = self.missing_checkpoint(prev) {
                    self.bad = Some(bad);
                } else if let Some(ahead) = self.ahead {
                    self.bad = Some(Bad {
                        seq: prev.head.seq + 1,
                        line: ahead.line,
                        reason: Reason::Truncated,
                        detail: Some(format!(
                            "a checkpoint names seq {}, the last entry is seq {}",
                            ahead.seq, prev.head.seq
                        )),
                    });
                }
            }
        }
        let last = self.prev.filter(|prev| !prev.anchor).map(|prev| prev.head);
        Report {
            ok: self.bad.is_none(),
            entries: self.entries,
            head: last.map(|head| head.hash),
            first_seq: self.first_seq,
            last_seq: last.map(|head| head.seq),
            start: self.start,
            checkpoints: self.checkpoints,
            signatures_checked: !self.keys.is_empty(),
            signed_through: self.signed_through,
            policy_every: self.policy.map(|policy| policy.every),
            first_bad: self.bad,
        }
    }

    fn fail(&mut self, seq: u64, reason: Reason, detail: Option<String>) {
        self.bad = Some(Bad {
            seq,
            line: self.line,
            reason,
            detail,
        });
    }

    fn expected_seq(&self) -> u64 {
        self.prev.map_or(0, |prev| prev.head.seq.saturating_add(1))
    }

    fn malformed(&mut self, seq: Option<u64>, detail: String) {
        if let Some(bad) = self
            .gap
            .take()
            .map(|(bad, _)| bad)
            .or_else(|| self.missing.take())
        {
            // Found before this line: that stays the first problem.
            self.bad = Some(bad);
            return;
        }
        let seq = seq.unwrap_or_else(|| self.expected_seq());
        self.fail(seq, Reason::Malformed, Some(detail));
    }

    fn missing_checkpoint(&self, prev: Prev) -> Option<Bad> {
        let due = self.policy.is_some_and(|policy| policy.due(prev.head.seq));
        (due && !prev.anchor && !prev.checkpointed).then_some(Bad {
            seq: prev.head.seq,
            line: self.line,
            reason: Reason::MissingCheckpoint,
            detail: None,
        })
    }

    fn read_line(&mut self, line: &[u8]) {
        let tree = match Json::parse(line) {
            Ok(tree) => tree,
            Err(e) => return self.malformed(None, format!("not JSON: {e}")),
        };
        if let Json::Object(members) = &tree {
            if members.len() == 1 && members[0].0 == "checkpoint" {
                // Rare (one per `every` entries): read again, typed.
                return match serde_json::from_slice::<CheckpointLine>(line) {
                    Ok(CheckpointLine { checkpoint }) => self.checkpoint(&checkpoint),
                    Err(e) => self.malformed(None, format!("not a checkpoint: {e}")),
                };
            }
        }
        self.entry(&tree);
    }

    fn entry(&mut self, entry: &Json<'_>) {
        if let Some(bad) = self.missing.take() {
            self.bad = Some(bad);
            return;
        }
        let links = match check_entry(entry) {
            Ok(links) => links,
            Err(detail) => {
                let seq = entry.get("seq").and_then(Json::as_u64);
                return self.malformed(seq, detail);
            }
        };
        if let Some((bad, jumped_to)) = self.gap.take() {
            // After 19, 21: a 20 now means 20 and 21 were swapped; anything later, that 20
            // is gone.
            let reason = if links.seq < jumped_to {
                Reason::Reorder
            } else {
                Reason::Gap
            };
            self.bad = Some(Bad { reason, ..bad });
            return;
        }
        let expected_prev = match self.prev {
            None => {
                if links.seq == 1 {
                    self.start = Some(Start::Genesis);
                    Hash::GENESIS
                } else if self.keys.is_empty() {
                    self.start = Some(Start::Unanchored { seq: links.seq });
                    links.prev_hash
                } else {
                    return self.fail(links.seq, Reason::UnanchoredStart, None);
                }
            }
            Some(prev) => {
                let expected = prev.head.seq.saturating_add(1);
                if links.seq > expected {
                    let gap = Bad {
                        seq: expected,
                        line: self.line,
                        reason: Reason::Gap,
                        detail: None,
                    };
                    self.gap = Some((gap, links.seq));
                    return;
                }
                if links.seq < expected || prev.head.seq == u64::MAX {
                    return self.fail(expected, Reason::Reorder, None);
                }
                if prev.anchor {
                    self.start = Some(Start::Anchored {
                        seq: prev.head.seq,
                        signature_checked: prev.verified,
                    });
                }
                prev.head.hash
            }
        };
        if links.prev_hash != expected_prev {
            return self.fail(links.seq, Reason::BrokenLink, None);
        }
        self.buf.clear();
        entry.write_canonical(Some("hash"), &mut self.buf);
        let mut sha = Sha256::new();
        sha.update(links.prev_hash.0);
        sha.update(&self.buf);
        if Hash(sha.finalize().into()) != links.hash {
            return self.fail(links.seq, Reason::HashMismatch, None);
        }
        let checkpointed = self.match_ahead(links);
        if self.bad.is_some() {
            return;
        }
        self.missing = self.prev.and_then(|prev| self.missing_checkpoint(prev));
        self.prev = Some(Prev {
            head: Head {
                seq: links.seq,
                hash: links.hash,
            },
            anchor: false,
            checkpointed,
            verified: false,
        });
        self.first_seq.get_or_insert(links.seq);
        self.entries += 1;
    }

    /// Matches a checkpoint that came before its entry (only in unusual exports).
    fn match_ahead(&mut self, links: Links) -> bool {
        let Some(ahead) = self.ahead.filter(|ahead| ahead.seq == links.seq) else {
            return false;
        };
        self.ahead = None;
        if ahead.hash != links.hash {
            self.fail(links.seq, Reason::CheckpointMismatch, None);
            return false;
        }
        self.count_checkpoint(ahead.seq, ahead.verified);
        true
    }

    fn count_checkpoint(&mut self, seq: u64, verified: bool) {
        self.checkpoints += 1;
        if verified && self.signed_through.is_none_or(|through| through < seq) {
            self.signed_through = Some(seq);
        }
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) {
        if self.gap.is_some() {
            // The next entry decides between gap and reorder.
            return;
        }
        if let Some(missing) = self.missing.take() {
            self.bad = Some(if checkpoint.seq == missing.seq {
                let detail = format!("it comes after the entry at seq {}", missing.seq + 1);
                Bad {
                    reason: Reason::MisplacedCheckpoint,
                    detail: Some(detail),
                    line: self.line,
                    ..missing
                }
            } else {
                missing
            });
            return;
        }
        let verified = match self.verify_signature(checkpoint) {
            Ok(verified) => verified,
            Err(detail) => return self.fail(checkpoint.seq, Reason::BadSignature, detail),
        };
        let Some(prev) = self.prev.as_mut() else {
            // Before any entry: the anchor, standing in for the entry at its seq.
            self.prev = Some(Prev {
                head: checkpoint.head(),
                anchor: true,
                checkpointed: true,
                verified,
            });
            return self.count_checkpoint(checkpoint.seq, verified);
        };
        if checkpoint.seq == prev.head.seq {
            if checkpoint.hash != prev.head.hash {
                return self.fail(checkpoint.seq, Reason::CheckpointMismatch, None);
            }
            prev.checkpointed = true;
            prev.verified |= verified;
            self.count_checkpoint(checkpoint.seq, verified);
        } else if checkpoint.seq > prev.head.seq {
            let pending = Pending {
                seq: checkpoint.seq,
                hash: checkpoint.hash,
                line: self.line,
                verified,
            };
            match self.ahead {
                Some(ahead) if ahead.seq == checkpoint.seq && ahead.hash != checkpoint.hash => {
                    self.fail(checkpoint.seq, Reason::CheckpointMismatch, None)
                }
                // Keep the highest: if it matches, the chain up to it is vouched for, and if
                // it is never reached, that is the truncation to report.
                Some(ahead) if ahead.seq >= checkpoint.seq => {}
                _ => self.ahead = Some(pending),
            }
        } else {
            let detail = format!("it comes after the entry at seq {}", prev.head.seq);
            self.fail(checkpoint.seq, Reason::MisplacedCheckpoint, Some(detail));
        }
    }

    /// `Ok(true)`: verified; `Ok(false)`: no key to verify with; `Err`: does not verify.
    fn verify_signature(&self, checkpoint: &Checkpoint) -> Result<bool, Option<String>> {
        if self.keys.is_empty() {
            return Ok(false);
        }
        let Some((_, key)) = self.keys.iter().find(|(id, _)| *id == checkpoint.key_id) else {
            return Err(Some(format!(
                "signed by key {}, not a key given",
                checkpoint.key_id
            )));
        };
        checkpoint.verify(key).map(|()| true).map_err(|_| None)
    }
}
