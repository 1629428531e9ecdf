#!/usr/bin/env bash
# Installs the OpenID provider that crates/hata-server/tests/sso.rs starts (oidc-provider,
# pinned by tests/oidc/package-lock.json) into
#   ${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/oidc/node_modules   (npm ci)
# with tests/oidc/provider.mjs beside it (ES modules resolve packages from their own
# directory). Stamped with a copy of the lock file: while it matches, only the script is
# copied again. .ci/run calls this; without it the single sign-on tests are skipped, except
# under CI=true.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}"
target="$deps/oidc"
if cmp -s "$here/package-lock.json" "$target/.installed-package-lock.json" \
    && cmp -s "$here/package.json" "$target/package.json"; then
    echo "oidc-provider: up to date in $target"
else
    echo "oidc-provider: installing into $target"
    rm -rf "$target"
    mkdir -p "$target"
    cp "$here/package.json" "$here/package-lock.json" "$target/"
    (cd "$target" && npm ci --no-audit --no-fund --loglevel=error --cache "$deps/npm-cache")
    cp "$here/package-lock.json" "$target/.installed-package-lock.json"
fi
cp "$here/provider.mjs" "$target/provider.mjs"
