#!/usr/bin/env bash
# Installs the deploy kit's linters (hadolint, check-jsonschema, kubernetes-validate),
# pinned by tests/deploy/requirements.txt, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/deploy   (pip install --target)
# stamped with a copy of the pins; while the stamp matches, nothing is installed again.
# deploy/check.sh calls this (and .ci/run calls deploy/check.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
python="${HATA_PYTHON:-python3}"
req="$here/requirements.txt"
mkdir -p "$deps"
if cmp -s "$req" "$deps/deploy/.installed-requirements.txt"; then
    echo "deploy tools: up to date in $deps/deploy"
else
    echo "deploy tools: installing into $deps/deploy"
    rm -rf "$deps/deploy"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$deps/deploy" --cache-dir "$deps/pip-cache" -r "$req"
    cp "$req" "$deps/deploy/.installed-requirements.txt"
fi

# The ServiceMonitor check (kubernetes-validate has no schema for the Prometheus Operator's
# kinds): @kubernetes-models/prometheus-operator, pinned by servicemonitor/package-lock.json,
# into $deps/deploy-servicemonitor (npm ci) with check.mjs beside it; stamped like the above.
sm="$deps/deploy-servicemonitor"
if cmp -s "$here/servicemonitor/package-lock.json" "$sm/.installed-package-lock.json" \
    && cmp -s "$here/servicemonitor/package.json" "$sm/package.json"; then
    echo "ServiceMonitor schema: up to date in $sm"
else
    echo "ServiceMonitor schema: installing into $sm"
    rm -rf "$sm"
    mkdir -p "$sm"
    cp "$here/servicemonitor/package.json" "$here/servicemonitor/package-lock.json" "$sm/"
    (cd "$sm" && npm ci --no-audit --no-fund --loglevel=error --cache "$deps/npm-cache")
    cp "$here/servicemonitor/package-lock.json" "$sm/.installed-package-lock.json"
fi
cp "$here/servicemonitor/check.mjs" "$sm/check.mjs"
