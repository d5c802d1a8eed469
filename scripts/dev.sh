#!/usr/bin/env bash
# Starts the gateway in development mode on a machine that has only Node 20 and npm:
# installs the pinned pnpm and the dependencies, builds, then `pnpm dev`
# (ports 2587 and 2465, a self-signed certificate, the embedded fake Cakemail API).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pnpm-env.sh
pnpm install --frozen-lockfile
exec pnpm dev
