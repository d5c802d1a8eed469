#!/usr/bin/env bash
# Builds the container image's production bundle without Docker, with the
# Dockerfile's steps: turbo prune --docker, install from the pruned lockfile with
# the pinned pnpm, build, `pnpm deploy --prod` of the gateway alone. Then puts the
# image's Node (ARG NODE_VERSION) beside it.
#
#   bash scripts/bundle.sh OUT    ->  OUT/bundle (what the image holds in /app)
#                                     OUT/node/bin/node (the image's Node)
set -euo pipefail
out=${1:?usage: bundle.sh OUT_DIR}
cd "$(dirname "$0")/.."
root=$PWD
mkdir -p "$out"
out=$(cd "$out" && pwd)
. scripts/pnpm-env.sh

# the image's Node, as the runtime stage has it
node_bin=$(bash scripts/image-node.sh)
mkdir -p "$out/node/bin"
cp "$node_bin" "$out/node/bin/node"

# prune (stage "prune")
rm -rf "$out/pruned" "$out/build" "$out/bundle"
pnpm exec turbo prune @cakemail-smtp/gateway --docker --out-dir "$out/pruned" >/dev/null

# install, then sources, then build and deploy (stage "build")
mkdir -p "$out/build"
cp -R "$out/pruned/json/." "$out/build/"
(cd "$out/build" && pnpm install --frozen-lockfile --reporter=silent)
cp -R "$out/pruned/full/." "$out/build/"
cp "$root/tsconfig.base.json" "$out/build/"
(cd "$out/build" \
  && pnpm exec turbo run build --filter=@cakemail-smtp/gateway --output-logs=errors-only >/dev/null \
  && pnpm --filter @cakemail-smtp/gateway deploy --prod --reporter=silent "$out/deploy")

# what the runtime stage copies into /app
mkdir -p "$out/bundle"
cp -R "$out/deploy/dist" "$out/deploy/node_modules" "$out/deploy/package.json" "$out/bundle/"
rm -rf "$out/pruned" "$out/build" "$out/deploy"
