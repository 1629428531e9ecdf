#!/usr/bin/env bash
# Installs moto (a real S3 API server), pinned by tests/backup/requirements.txt, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/backup   (pip install --target)
# stamped with a copy of the pins; while the stamp matches, nothing is installed again.
# crates/hata-cli/tests/backup.rs starts `python3 -m moto.server` from it on a free port
# (skipped without it, except under CI=true, where it fails).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
python="${HATA_PYTHON:-python3}"
req="$here/requirements.txt"
mkdir -p "$deps"
if cmp -s "$req" "$deps/backup/.installed-requirements.txt"; then
    echo "moto: up to date in $deps/backup"
else
    echo "moto: installing into $deps/backup"
    rm -rf "$deps/backup"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$deps/backup" --cache-dir "$deps/pip-cache" -r "$req"
    cp "$req" "$deps/backup/.installed-requirements.txt"
fi
