#!/usr/bin/env bash
# Installs cryptography, pinned by tests/audit/requirements.txt, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/audit   (pip install --target)
# stamped with a copy of the pins; while the stamp matches, nothing is installed again.
# crates/hata-audit/tests/python_verifier.rs runs docs/audit_verify.py with it on PYTHONPATH
# (skipped without it, except under CI=true, where it fails).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
python="${HATA_PYTHON:-python3}"
req="$here/requirements.txt"
mkdir -p "$deps"
if cmp -s "$req" "$deps/audit/.installed-requirements.txt"; then
    echo "audit verifier: up to date in $deps/audit"
else
    echo "audit verifier: installing into $deps/audit"
    rm -rf "$deps/audit"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$deps/audit" --cache-dir "$deps/pip-cache" -r "$req"
    cp "$req" "$deps/audit/.installed-requirements.txt"
fi
