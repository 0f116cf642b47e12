#!/usr/bin/env bash
# install-deps.sh — the Debian 12 packages FlowDB needs to build and test.
# Run as root.  Skips apt entirely when everything is installed already.
set -euo pipefail
PACKAGES=(
    build-essential make
    postgresql-15 postgresql-server-dev-15
    liblz4-dev libxxhash-dev librocksdb-dev
    clang libclang-rt-14-dev
    libipc-run-perl     # PostgreSQL::Test::Cluster (TAP tests)
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
