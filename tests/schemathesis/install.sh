#!/usr/bin/env bash
# Installs schemathesis, pinned by tests/schemathesis/requirements.txt, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/schemathesis   (pip install --target)
# stamped with a copy of the pins; while the stamp matches, nothing is installed again.
# .ci/run calls this; crates/hata-cli/tests/schemathesis.rs runs it (skipped without it,
# except under CI=true, where it fails).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
python="${HATA_PYTHON:-python3}"
req="$here/requirements.txt"
mkdir -p "$deps"
if cmp -s "$req" "$deps/schemathesis/.installed-requirements.txt"; then
    echo "schemathesis: up to date in $deps/schemathesis"
else
    echo "schemathesis: installing into $deps/schemathesis"
    rm -rf "$deps/schemathesis"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$deps/schemathesis" --cache-dir "$deps/pip-cache" -r "$req"
    cp "$req" "$deps/schemathesis/.installed-requirements.txt"
fi
