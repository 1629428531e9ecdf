//! Verifying a chain of 1,000,000 entries (flag documents of ~200 bytes as old and new, a
//! checkpoint every 1,000, signatures checked), one thread, from lines in memory: the cost of
//! `hata audit verify` and `GET /audit/verify` without the reading. The goal is under 10 s;
//! the measured figure is in docs/audit.md.
//!
//! `cargo bench -p hata-audit --bench verify`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hata_audit::{CheckpointPolicy, Verifier};

const ENTRIES: u64 = 1_000_000;

fn verify_million(c: &mut Criterion) {
    let key = support::test_key();
    let lines = support::chain(ENTRIES, 1000, &key, false);
    let bytes: usize = lines.iter().map(String::len).sum();
    eprintln!("{} lines, {} MB", lines.len(), bytes / 1_000_000);

    let mut group = c.benchmark_group("verify");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(ENTRIES));
    group.bench_function("1M entries", |b| {
        b.iter(|| {
            let mut verifier = Verifier::new()
                .with_public_key(key.public_key())
                .with_policy(CheckpointPolicy::default());
            for line in &lines {
                verifier.push_line(line);
            }
            let report = verifier.finish();
            assert!(report.ok && report.entries == ENTRIES, "{report:?}");
            report
        })
    });
    group.finish();
}

criterion_group!(benches, verify_million);
criterion_main!(benches);
