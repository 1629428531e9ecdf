#!/usr/bin/env bash
# Installs opentelemetry-proto (and protobuf), pinned by tests/otel/requirements.txt, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/otel   (pip install --target)
# stamped with a copy of the pins; while the stamp matches, nothing is installed again.
# crates/hata-cli/tests/traces.rs runs tests/otel/receiver.py with it on PYTHONPATH
# (skipped without it, except under CI=true, where it fails).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
python="${HATA_PYTHON:-python3}"
req="$here/requirements.txt"
mkdir -p "$deps"
if cmp -s "$req" "$deps/otel/.installed-requirements.txt"; then
    echo "OTLP receiver: up to date in $deps/otel"
else
    echo "OTLP receiver: installing into $deps/otel"
    rm -rf "$deps/otel"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$deps/otel" --cache-dir "$deps/pip-cache" -r "$req"
    cp "$req" "$deps/otel/.installed-requirements.txt"
fi
