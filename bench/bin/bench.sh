#!/bin/sh
# Raises the open-file limit (S4 holds 2,000 sessions: a socket each on both ends), then runs
# the bench with the arguments given (`pnpm bench --quick` passes `--quick` through turbo).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node --enable-source-maps "$(dirname "$0")/../dist/run.js" "$@"
