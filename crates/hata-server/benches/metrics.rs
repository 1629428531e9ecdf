//! What the request metrics add to every request: resolving the route template from the
//! path (`matchit`, against `openapi::ROUTES`) and recording count and duration (relaxed
//! atomic adds). The numbers are in `docs/operations.md` ("Metrics").
//!
//! `cargo bench -p hata-server --bench metrics -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use hata_server::metrics::HttpMetrics;

fn request_metrics(c: &mut Criterion) {
    let metrics = HttpMetrics::new();
    for (name, path) in [
        ("single flag", "/ofrep/v1/evaluate/flags/new-checkout"),
        (
            "flag environment",
            "/api/v1/projects/shop/flags/new-checkout/environments/production",
        ),
        ("unmatched", "/wp-admin/install.php"),
    ] {
        c.bench_function(&format!("route + record: {name}"), |b| {
            b.iter(|| {
                let route = metrics.route(black_box(path));
                metrics.record(
                    route,
                    &Method::POST,
                    StatusCode::OK,
                    Duration::from_micros(black_box(180)),
                );
            })
        });
    }
}

criterion_group!(benches, request_metrics);
criterion_main!(benches);
