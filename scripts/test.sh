#!/usr/bin/env bash
# Runs every test on a fresh machine that has only Node 20 and npm.
# Installs what the tests need: Debian packages (when run as root on Debian),
# the pinned pnpm, the workspace's dependencies. Then builds, lints, typechecks
# and runs every package's tests through turbo.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages used by the tests: swaks, openssl, testssl.sh, msmtp, redis, postfix tools, haproxy
need_apt=()
for bin in swaks openssl testssl msmtp redis-server smtp-source haproxy; do
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages for: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      swaks libnet-ssleay-perl libauthen-sasl-perl openssl testssl.sh msmtp redis-server postfix bsdextrautils haproxy >/dev/null
  else
    echo "missing test tools: ${need_apt[*]} (install swaks libnet-ssleay-perl libauthen-sasl-perl openssl testssl.sh msmtp redis-server postfix haproxy)" >&2
    exit 1
  fi
fi

# --- pnpm, the pinned version, without root
. scripts/pnpm-env.sh

pnpm install --frozen-lockfile

# --- a redis-server for the tests of the shared (multi-replica) lockout store
if [ -z "${REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  redis_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
  redis_pid=$!
  trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_URL="redis://127.0.0.1:$redis_port"
  echo "redis-server for the tests on $REDIS_URL"
fi

pnpm run build
pnpm run lint
pnpm run typecheck

# every package's tests; the summary line, printed last, counts them all
test_log=$(mktemp)
pnpm run test 2>&1 | tee "$test_log"
summary=$(node -e '
  const text = require("fs").readFileSync(process.argv[1], "utf8").replace(/\x1b\[[0-9;]*m/g, "");
  let passed = 0, failed = 0;
  for (const m of text.matchAll(/^.*\bTests\s+(.*)$/gm)) {
    passed += Number(/(\d+) passed/.exec(m[1])?.[1] ?? 0);
    failed += Number(/(\d+) failed/.exec(m[1])?.[1] ?? 0);
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$test_log")
rm -f "$test_log"

# --- the TLS audit of both listeners (testssl.sh): fails the build on any regression
node scripts/tls-audit.mjs

# --- the benchmark harness, as a smoke test only: it fails if the harness breaks, never on targets
pnpm bench --quick

echo "$summary"
