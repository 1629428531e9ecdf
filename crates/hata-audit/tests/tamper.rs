//! Each way of tampering with an exported chain, and the first bad seq and reason the
//! verifier must name; and the exports that must verify (untampered, anchored ranges, pruned
//! chains). A chain of 50 entries with a checkpoint every 10, signed with `test_key`.

mod support;

use hata_audit::{
    checkpoint_line, parse_line, Checkpoint, CheckpointPolicy, Head, Line, PublicKey, Reason,
    Report, Start, Verifier,
};
use serde_json::json;
use support::*;

const N: u64 = 50;
const EVERY: u64 = 10;

fn lines() -> Vec<String> {
    chain(N, EVERY, &test_key(), false)
}

fn public() -> PublicKey {
    test_key().public_key()
}

/// Verifies with the public key and the policy.
fn verify(lines: &[String]) -> Report {
    verify_with(
        Verifier::new()
            .with_public_key(public())
            .with_policy(CheckpointPolicy { every: EVERY }),
        lines,
    )
}

fn verify_with(mut verifier: Verifier, lines: &[String]) -> Report {
    for line in lines {
        verifier.push_line(line);
    }
    verifier.finish()
}

#[track_caller]
fn assert_bad(report: &Report, seq: u64, reason: Reason) {
    assert!(!report.ok, "expected {reason} at {seq}, got ok: {report:?}");
    let bad = report
        .first_bad
        .as_ref()
        .expect("a failed report names the first bad seq");
    assert_eq!((bad.seq, bad.reason), (seq, reason), "{bad}");
}

fn checkpoint_of(line: &str) -> Checkpoint {
    match parse_line(line.as_bytes()) {
        Ok(Line::Checkpoint(cp)) => cp,
        other => panic!("not a checkpoint line: {other:?}"),
    }
}

#[test]
fn untampered_chain_verifies() {
    let lines = lines();
    assert_eq!(lines.len(), 55);
    let report = verify(&lines);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, N);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(N)));
    assert_eq!(report.start, Some(Start::Genesis));
    assert_eq!(report.checkpoints, 5);
    assert!(report.signatures_checked);
    assert_eq!(report.signed_through, Some(50));
    let last = serde_json::from_str::<serde_json::Value>(&lines[lines.len() - 2]).expect("json");
    assert_eq!(
        report.head.map(|h| h.to_hex()),
        last["hash"].as_str().map(String::from)
    );
}

#[test]
fn without_a_key_signatures_are_not_checked_and_the_report_says_so() {
    let report = verify_with(Verifier::new(), &lines());
    assert!(report.ok, "{report:?}");
    assert!(!report.signatures_checked);
    assert_eq!(report.signed_through, None);
    assert_eq!(report.checkpoints, 5);
}

#[test]
fn edited_field_is_a_hash_mismatch() {
    for (member, value) in [
        ("action", json!("delete")),
        ("new", json!({"on": true})),
        ("actor", json!({"kind": "system", "id": "x", "name": null})),
        ("at", json!("2027-01-01T00:00:00.000000Z")),
        ("ip", json!(null)),
    ] {
        let mut lines = lines();
        let i = entry_index(&lines, 23);
        edit_entry(&mut lines, i, member, value);
        assert_bad(&verify(&lines), 23, Reason::HashMismatch);
    }
}

#[test]
fn added_or_removed_member_is_a_hash_mismatch_or_malformed() {
    let mut lines = lines();
    let i = entry_index(&lines, 23);
    edit_entry(&mut lines, i, "note", json!("added"));
    assert_bad(&verify(&lines), 23, Reason::HashMismatch);

    let mut lines = self::lines();
    let i = entry_index(&lines, 23);
    let mut entry: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&lines[i]).expect("entry");
    entry.remove("user_agent");
    lines[i] = serde_json::to_string(&entry).expect("json");
    assert_bad(&verify(&lines), 23, Reason::Malformed);
}

#[test]
fn edited_field_with_its_hash_recomputed_breaks_the_next_link() {
    let mut lines = lines();
    let i = entry_index(&lines, 23);
    let prev: serde_json::Value =
        serde_json::from_str(&lines[entry_index(&lines, 22)]).expect("json");
    let prev_hash = hata_audit::Hash::parse(prev["hash"].as_str().expect("hash")).expect("hex");
    let mut forged = entry_for(23, false);
    forged.action = "delete".into();
    lines[i] = forged
        .seal(&Head {
            seq: 22,
            hash: prev_hash,
        })
        .expect("sealable")
        .json();
    assert_bad(&verify(&lines), 24, Reason::BrokenLink);
}

#[test]
fn deleted_line_is_a_gap() {
    let mut lines = lines();
    lines.remove(entry_index(&lines, 17));
    assert_bad(&verify(&lines), 17, Reason::Gap);
    // The last entry before the end.
    let mut lines = self::lines();
    lines.remove(entry_index(&lines, 49));
    assert_bad(&verify(&lines), 49, Reason::Gap);
}

#[test]
fn deleted_line_at_a_checkpoint_is_a_gap() {
    let mut lines = lines();
    lines.remove(entry_index(&lines, 20));
    assert_bad(&verify(&lines), 20, Reason::Gap);
}

#[test]
fn inserted_line_breaks_the_link_of_the_entry_after_it() {
    // A forged entry 20 that links to 19 correctly; the real entries from 20 on renumbered,
    // as a row inserted into the table would force.
    let mut lines = lines();
    let prev: serde_json::Value =
        serde_json::from_str(&lines[entry_index(&lines, 19)]).expect("json");
    let head = Head {
        seq: 19,
        hash: hata_audit::Hash::parse(prev["hash"].as_str().expect("hash")).expect("hex"),
    };
    let forged = new_entry(20, json!(null), json!({"backdoor": true}))
        .seal(&head)
        .expect("sealable");
    let at = entry_index(&lines, 20);
    for i in at..lines.len() {
        let (is_checkpoint, seq) = kind_of(&lines[i]);
        if !is_checkpoint {
            edit_entry(&mut lines, i, "seq", json!(seq + 1));
        }
    }
    lines.insert(at, forged.json());
    assert_bad(&verify(&lines), 21, Reason::BrokenLink);
}

#[test]
fn duplicated_seq_is_a_reorder() {
    let mut lines = lines();
    let i = entry_index(&lines, 20);
    lines.insert(i, lines[i].clone());
    assert_bad(&verify(&lines), 21, Reason::Reorder);
}

#[test]
fn swapped_lines_are_a_reorder() {
    let mut lines = lines();
    let (a, b) = (entry_index(&lines, 23), entry_index(&lines, 24));
    lines.swap(a, b);
    assert_bad(&verify(&lines), 23, Reason::Reorder);
    // Not adjacent.
    let mut lines = self::lines();
    let (a, b) = (entry_index(&lines, 23), entry_index(&lines, 27));
    lines.swap(a, b);
    assert_bad(&verify(&lines), 23, Reason::Reorder);
}

#[test]
fn tail_cut_before_the_last_checkpoint_is_truncated() {
    // Entries 41..=50 deleted; the checkpoints table still holds seq 50, so the export ends
    // with it after the checkpoint at 40.
    let lines = lines();
    let mut cut: Vec<String> = lines[..=checkpoint_index(&lines, 40)].to_vec();
    cut.push(lines[checkpoint_index(&lines, 50)].clone());
    assert_bad(&verify(&cut), 41, Reason::Truncated);
    // Without the policy or the key: still truncated.
    assert_bad(&verify_with(Verifier::new(), &cut), 41, Reason::Truncated);
}

#[test]
fn tail_cut_with_its_checkpoints_goes_unnoticed_but_is_not_signed() {
    // The limit of any offline check (docs/audit.md): cut at 45 with the checkpoint at 50
    // gone too, what is left is a valid chain. The report shows only 40 are signed.
    let lines = lines();
    let cut = &lines[..=entry_index(&lines, 45)];
    let report = verify(cut);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.last_seq, Some(45));
    assert_eq!(report.signed_through, Some(40));
}

#[test]
fn checkpoint_forged_with_another_key_is_a_bad_signature() {
    let other = other_key();
    let lines = lines();
    let i = checkpoint_index(&lines, 30);
    let real = checkpoint_of(&lines[i]);

    // Signed by another key, naming it.
    let mut forged = lines.clone();
    let cp = Checkpoint::sign(real.head(), at(30), &other).expect("ok");
    forged[i] = checkpoint_line(&cp);
    assert_bad(&verify(&forged), 30, Reason::BadSignature);

    // Signed by another key, claiming ours.
    let mut cp = cp;
    cp.key_id = test_key().key_id();
    forged[i] = checkpoint_line(&cp);
    assert_bad(&verify(&forged), 30, Reason::BadSignature);

    // Ours, edited.
    let mut edited = real.clone();
    edited.at = "2026-01-01T00:00:00.000000Z".into();
    forged[i] = checkpoint_line(&edited);
    assert_bad(&verify(&forged), 30, Reason::BadSignature);
}

#[test]
fn without_a_key_an_edited_checkpoint_is_caught_only_by_its_hash() {
    let lines = lines();
    let i = checkpoint_index(&lines, 30);
    let mut forged = lines.clone();
    let mut cp = checkpoint_of(&lines[i]);
    cp.hash.0[0] ^= 1;
    forged[i] = checkpoint_line(&cp);
    assert_bad(
        &verify_with(Verifier::new(), &forged),
        30,
        Reason::CheckpointMismatch,
    );

    // A consistent forgery with another key passes without a key, and is not signed.
    let cp = Checkpoint::sign(checkpoint_of(&lines[i]).head(), at(30), &other_key()).expect("ok");
    forged[i] = checkpoint_line(&cp);
    let report = verify_with(Verifier::new(), &forged);
    assert!(report.ok && !report.signatures_checked, "{report:?}");
}

#[test]
fn rewritten_tail_fails_at_the_next_checkpoint() {
    // Entries from 25 on rewritten with every hash recomputed: the chain itself is
    // consistent, only the signed checkpoint at 30 disagrees.
    let lines = lines();
    let prev: serde_json::Value =
        serde_json::from_str(&lines[entry_index(&lines, 24)]).expect("json");
    let mut head = Head {
        seq: 24,
        hash: hata_audit::Hash::parse(prev["hash"].as_str().expect("hash")).expect("hex"),
    };
    let mut forged = lines[..=entry_index(&lines, 24)].to_vec();
    for seq in 25..=N {
        let mut entry = entry_for(seq, false);
        entry.request_id = Some("rewritten".into());
        let sealed = entry.seal(&head).expect("sealable");
        head = sealed.head();
        forged.push(sealed.json());
        if seq % EVERY == 0 {
            forged.push(lines[checkpoint_index(&lines, seq)].clone());
        }
    }
    assert_bad(&verify(&forged), 30, Reason::CheckpointMismatch);
}

#[test]
fn removed_policy_checkpoint_is_missing() {
    let mut lines = lines();
    lines.remove(checkpoint_index(&lines, 20));
    assert_bad(&verify(&lines), 20, Reason::MissingCheckpoint);
    // The last one.
    let mut lines = self::lines();
    lines.pop();
    assert_bad(&verify(&lines), 50, Reason::MissingCheckpoint);
    // Without the policy nobody asks for it.
    let report = verify_with(Verifier::new().with_public_key(public()), &lines);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.signed_through, Some(40));
}

#[test]
fn extra_time_based_checkpoints_are_welcome() {
    let mut lines = lines();
    let i = entry_index(&lines, 13);
    let entry: serde_json::Value = serde_json::from_str(&lines[i]).expect("json");
    let head = Head {
        seq: 13,
        hash: hata_audit::Hash::parse(entry["hash"].as_str().expect("hash")).expect("hex"),
    };
    let cp = Checkpoint::sign(head, at(13), &test_key()).expect("ok");
    lines.insert(i + 1, checkpoint_line(&cp));
    let report = verify(&lines);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checkpoints, 6);
}

#[test]
fn misplaced_checkpoint_is_named() {
    let mut lines = lines();
    let i = checkpoint_index(&lines, 20);
    lines.swap(i, i + 1); // after entry 21
    assert_bad(&verify(&lines), 20, Reason::MisplacedCheckpoint);
}

#[test]
fn malformed_lines() {
    for bad in [
        "not json",
        "[]",
        "{\"checkpoint\":{\"seq\":20}}",
        "{\"seq\":12}",
    ] {
        let mut lines = lines();
        let i = entry_index(&lines, 12);
        lines[i] = bad.into();
        let report = verify(&lines);
        assert_bad(&report, 12, Reason::Malformed);
        assert_eq!(
            report.first_bad.as_ref().map(|b| b.line),
            Some(u64::try_from(i + 1).expect("small"))
        );
    }
    // A member twice: JSON readers disagree on which counts.
    let mut lines = lines();
    let i = entry_index(&lines, 12);
    let line = lines[i].trim_end_matches('}').to_string();
    lines[i] = format!("{line},\"action\":\"delete\"}}");
    assert_bad(&verify(&lines), 12, Reason::Malformed);

    let mut verifier = Verifier::new();
    verifier.push_line_bytes(b"{\"seq\":\"\xff\"}");
    assert_bad(&verifier.finish(), 0, Reason::Malformed);
}

#[test]
fn blank_lines_are_skipped() {
    let mut lines = lines();
    lines.insert(3, String::new());
    lines.push("  ".into());
    assert!(verify(&lines).ok);
}

#[test]
fn anchored_range_verifies() {
    let lines = lines();
    let part = range(&lines, 21, true);
    let report = verify(&part);
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.start,
        Some(Start::Anchored {
            seq: 20,
            signature_checked: true
        })
    );
    assert_eq!(
        (report.first_seq, report.last_seq, report.entries),
        (Some(21), Some(50), 30)
    );
    assert_eq!(report.checkpoints, 4);
    // A pruned chain is the same shape: kept from 31 on, anchored at 30.
    let pruned = range(&lines, 31, true);
    assert!(verify(&pruned).ok);
}

#[test]
fn range_without_anchor_fails_with_a_key_and_is_noted_without() {
    let lines = lines();
    let part = range(&lines, 21, false);
    assert_bad(&verify(&part), 21, Reason::UnanchoredStart);
    let report = verify_with(Verifier::new(), &part);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.start, Some(Start::Unanchored { seq: 21 }));
    // A range starting where no checkpoint precedes it has no anchor either.
    assert_bad(
        &verify(&range(&lines, 25, true)),
        25,
        Reason::UnanchoredStart,
    );
}

#[test]
fn anchor_problems() {
    let lines = lines();
    // The anchor's signature is forged.
    let mut part = range(&lines, 21, true);
    let mut cp = checkpoint_of(&part[0]);
    cp.hash.0[5] ^= 1;
    part[0] = checkpoint_line(&cp);
    assert_bad(&verify(&part), 20, Reason::BadSignature);
    // Without a key the altered anchor does not link.
    assert_bad(&verify_with(Verifier::new(), &part), 21, Reason::BrokenLink);
    // Entries missing right after the anchor.
    let mut part = range(&lines, 21, true);
    part.remove(1);
    assert_bad(&verify(&part), 21, Reason::Gap);
}

#[test]
fn push_entry_and_push_checkpoint_match_push_line() {
    let lines = lines();
    let mut verifier = Verifier::new()
        .with_public_key(public())
        .with_policy(CheckpointPolicy { every: EVERY });
    for line in &lines {
        match parse_line(line.as_bytes()).expect("a line") {
            Line::Entry(map) => verifier.push_entry(&serde_json::Value::Object(map)),
            Line::Checkpoint(cp) => verifier.push_checkpoint(&cp),
        }
    }
    assert_eq!(verifier.finish(), verify(&lines));
}

#[test]
fn report_serialises_to_the_api_shape() {
    let ok = serde_json::to_value(verify(&lines())).expect("json");
    assert_eq!(ok["ok"], json!(true));
    assert_eq!(ok["entries"], json!(50));
    assert!(ok["head"].as_str().is_some_and(|h| h.len() == 64));
    assert!(ok.get("first_bad").is_none());

    let mut lines = lines();
    lines.remove(entry_index(&lines, 17));
    let bad = serde_json::to_value(verify(&lines)).expect("json");
    assert_eq!(bad["ok"], json!(false));
    assert_eq!(bad["entries"], json!(16));
    assert_eq!(bad["first_bad"]["seq"], json!(17));
    assert_eq!(bad["first_bad"]["reason"], json!("gap"));
    assert!(bad["first_bad"]["message"].is_string());
}
