# Sourced by the scripts: puts the pnpm pinned in package.json on PATH,
# installing it under .tools/ (no root needed) when it is missing.
PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  if [ ! -x .tools/node_modules/.bin/pnpm ] || [ "$(.tools/node_modules/.bin/pnpm --version)" != "$PNPM_VERSION" ]; then
    npm install --silent --no-audit --no-fund --prefix .tools "pnpm@$PNPM_VERSION"
  fi
  export PATH="$PWD/.tools/node_modules/.bin:$PATH"
fi
