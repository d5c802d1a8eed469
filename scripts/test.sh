#!/usr/bin/env bash
# Runs every test on a fresh machine that has only Node 20 and npm.
# Installs what the tests need: Debian packages (when run as root on Debian),
# the pinned pnpm, the workspace's dependencies, the container image's Node.
# Then builds, lints, typechecks and runs every package's tests through turbo,
# on the machine's Node and again on the image's Node.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages used by the tests: swaks, openssl, testssl.sh, msmtp, redis, postfix tools,
# haproxy, promtool (prometheus), chromium and its fonts
need_apt=()
for bin in swaks openssl testssl msmtp redis-server smtp-source haproxy promtool chromium unshare setpriv; do
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin")
done
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=("fonts-dejavu-core")
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages for: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      swaks libnet-ssleay-perl libauthen-sasl-perl openssl testssl.sh msmtp redis-server postfix bsdextrautils \
      haproxy prometheus chromium fonts-dejavu-core util-linux >/dev/null
  else
    echo "missing test tools: ${need_apt[*]} (install swaks libnet-ssleay-perl libauthen-sasl-perl openssl testssl.sh msmtp redis-server postfix haproxy prometheus chromium fonts-dejavu-core util-linux)" >&2
    exit 1
  fi
fi
# kubectl renders the Kubernetes overlays (deploy/test); Debian has no package for it
if ! command -v kubectl >/dev/null 2>&1; then
  echo "missing kubectl: the Kubernetes manifests are rendered with 'kubectl kustomize' (https://kubernetes.io/docs/tasks/tools/)" >&2
  exit 1
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

# --- the container image's Node (ARG NODE_VERSION in the Dockerfile), from the npm registry
image_node=$(bash scripts/image-node.sh)

# every package's tests, on the machine's Node, then on the image's; the summary, printed last, counts them all
count_tests='
  const text = require("fs").readFileSync(process.argv[1], "utf8").replace(/\x1b\[[0-9;]*m/g, "");
  let passed = 0, failed = 0;
  for (const m of text.matchAll(/^.*\bTests\s+(.*)$/gm)) {
    passed += Number(/(\d+) passed/.exec(m[1])?.[1] ?? 0);
    failed += Number(/(\d+) failed/.exec(m[1])?.[1] ?? 0);
  }
  console.log(`${passed} ${failed}`);
'
# the failed tests' names and first error lines, kept for the end of the output (where a reader looks first)
failures_of='
  const text = require("fs").readFileSync(process.argv[1], "utf8").replace(/\x1b\[[0-9;]*m/g, "");
  const lines = text.split("\n"), out = [];
  lines.forEach((line, i) => {
    if (!/ FAIL\s+\S/.test(line)) return;
    out.push(`[${process.argv[2]}] ${line.trim()}`);
    const error = lines.slice(i + 1, i + 4).find((l) => /Error|expected|Timeout|timed out/i.test(l));
    if (error) out.push(`    ${error.trim().slice(0, 300)}`);
  });
  console.log(out.slice(0, 60).join("\n"));
'
test_log=$(mktemp)
failures=$(mktemp)
trap 'rm -f "$test_log" "$failures"; [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true' EXIT
status=0
# --continue: a failing package does not stop the others, so the count covers every test
pnpm run test --continue 2>&1 | tee "$test_log" || status=1
read -r passed20 failed20 < <(node -e "$count_tests" "$test_log")
node -e "$failures_of" "$test_log" "node 20" >>"$failures"
node20=$(node --version)

echo "--- the tests again on the image's Node, $("$image_node" --version)"
PATH="$(dirname "$image_node"):$PATH" pnpm run test --continue 2>&1 | tee "$test_log" || status=1
read -r passed24 failed24 < <(node -e "$count_tests" "$test_log")
node -e "$failures_of" "$test_log" "node 24" >>"$failures"
node24=$("$image_node" --version)

# --- the TLS audit of both listeners (testssl.sh): fails the build on any regression
node scripts/tls-audit.mjs || status=1

# --- the benchmark harness, as a smoke test only: it fails if the harness breaks, never on targets
pnpm bench --quick || status=1

if grep -q . "$failures"; then echo "failed tests:"; grep . "$failures"; fi
echo "tests on Node $node20: $passed20 passed, $failed20 failed; on Node $node24: $passed24 passed, $failed24 failed"
echo "tests: $((passed20 + passed24)) passed, $((failed20 + failed24)) failed"
exit "$status"
