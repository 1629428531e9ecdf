#!/usr/bin/env bash
# Installs the real OpenFeature clients that crates/hata-cli/tests/ofrep_clients.rs runs, pinned
# by tests/clients/python/requirements.txt and tests/clients/node/package-lock.json, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/python        (pip install --target)
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/node/node_modules  (npm ci)
# Each part is stamped with a copy of the file that pins it; while the stamp matches, the part
# is not installed again, so a second run takes well under a second. .ci/run calls this; run it
# by hand to make the client tests run on your machine (without the deps they are skipped,
# except under CI=true, where they fail).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
mkdir -p "$deps"

# --- Python: openfeature-sdk + openfeature-provider-ofrep ----------------------------------------
python="${HATA_PYTHON:-python3}"
req="$here/python/requirements.txt"
if cmp -s "$req" "$deps/python/.installed-requirements.txt"; then
    echo "python client deps: up to date in $deps/python"
else
    echo "python client deps: installing into $deps/python"
    rm -rf "$deps/python"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$deps/python" --cache-dir "$deps/pip-cache" -r "$req"
    cp "$req" "$deps/python/.installed-requirements.txt"
fi

# --- Node: @openfeature/server-sdk, web-sdk, ofrep-provider, ofrep-web-provider, eventsource ------
lock="$here/node/package-lock.json"
if cmp -s "$lock" "$deps/node/.installed-package-lock.json" \
    && cmp -s "$here/node/package.json" "$deps/node/package.json"; then
    echo "node client deps: up to date in $deps/node"
else
    echo "node client deps: installing into $deps/node"
    rm -rf "$deps/node"
    mkdir -p "$deps/node"
    cp "$here/node/package.json" "$lock" "$deps/node/"
    (cd "$deps/node" && npm ci --no-audit --no-fund --loglevel=error --cache "$deps/npm-cache")
    cp "$lock" "$deps/node/.installed-package-lock.json"
fi
