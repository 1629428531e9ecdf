# syntax=docker/dockerfile:1
#
# hata as a container image: `docker build -t hata .` at the repository root.
# docs/operations.md ("Container") says how to run it.

# --- build -----------------------------------------------------------------------------------
# Debian bookworm, like the runtime stage, so the binary links against the same glibc.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependency caching: the cargo registry and the target directory are BuildKit cache mounts,
# kept between builds, so a source change recompiles the workspace crates and not the
# dependencies. The target directory is a cache, not a layer: copy the binary out in the same
# RUN. --locked: exactly Cargo.lock's versions.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p hata-cli \
    && install -D -m 0755 target/release/hata /out/hata

# --- runtime ---------------------------------------------------------------------------------
# debian:bookworm-slim rather than gcr.io/distroless/cc-debian12:nonroot: distroless has no
# shell, so the image could carry no HEALTHCHECK (plain `docker run` and Compose's
# `depends_on: service_healthy` would have nothing to go by). bookworm-slim has bash, whose
# /dev/tcp sends a real HTTP request to /health/live without adding curl or wget. It costs
# about 50 MB more than distroless; nothing is installed into it (no compiler, no package
# cache). No CA bundle is needed: hata trusts the Mozilla roots compiled into it.
FROM debian:bookworm-slim

# A fixed uid/gid, so volume ownership and Kubernetes' runAsUser/fsGroup can name them.
RUN groupadd --system --gid 10001 hata \
    && useradd --system --uid 10001 --gid hata --home-dir /var/lib/hata --no-create-home \
        --shell /usr/sbin/nologin hata \
    && mkdir -p /var/lib/hata \
    && chown hata:hata /var/lib/hata \
    && chmod 0700 /var/lib/hata

COPY --from=build /out/hata /usr/local/bin/hata

# Listen on every interface inside the container (the default, 127.0.0.1, is unreachable from
# outside it). The data directory holds the SQLite store, the generated admin token and the
# audit signing key, unless HATA_DATABASE_URL / HATA_AUDIT_KEY point elsewhere.
ENV HATA_LISTEN=0.0.0.0:7070 \
    HATA_DATA_DIR=/var/lib/hata \
    HATA_LOG_FORMAT=json
VOLUME ["/var/lib/hata"]
EXPOSE 7070

USER 10001:10001
WORKDIR /var/lib/hata

# /health/live over plain HTTP on HATA_LISTEN's port: answers while the process serves,
# whether or not the database does (readiness, /health/ready, is the load balancer's and the
# orchestrator's business). With --tls-cert set, rely on the orchestrator's probes instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/bin/bash", "-o", "pipefail", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${HATA_LISTEN##*:}\" && printf 'GET /health/live HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/hata"]
CMD ["serve"]
