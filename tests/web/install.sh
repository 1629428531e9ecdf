#!/usr/bin/env bash
# Installs axe-core (pinned by tests/web/package-lock.json), which
# crates/hata-cli/tests/web_ui.rs injects into every page it visits, into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/web/node_modules   (npm ci)
# Stamped with a copy of the lock file: while it matches, nothing is done. The browser itself
# is Debian's chromium and chromium-driver (.ci/run installs them). .ci/run calls this;
# without it the browser tests are skipped, except under CI=true.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
target="$deps/web"
if cmp -s "$here/package-lock.json" "$target/.installed-package-lock.json" \
    && cmp -s "$here/package.json" "$target/package.json"; then
    echo "axe-core: up to date in $target"
else
    echo "axe-core: installing into $target"
    rm -rf "$target"
    mkdir -p "$target"
    cp "$here/package.json" "$here/package-lock.json" "$target/"
    (cd "$target" && npm ci --no-audit --no-fund --loglevel=error --cache "$deps/npm-cache")
    cp "$here/package-lock.json" "$target/.installed-package-lock.json"
fi
