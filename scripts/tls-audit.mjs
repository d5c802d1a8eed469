#!/usr/bin/env node
/**
 * TLS audit of the gateway's two listeners with testssl.sh (issue #4, item 5).
 *
 *   node scripts/tls-audit.mjs                      # start the built gateway, audit both listeners
 *   node scripts/tls-audit.mjs --target 127.0.0.1:4465 --mode implicit   # audit one endpoint you run
 *
 * Default: starts apps/gateway/dist/main.js (build it first) on 127.0.0.1, free ports, a per-run
 * self-signed certificate in a temp dir; runs testssl against the STARTTLS port (--starttls smtp)
 * and the implicit-TLS port; stops the gateway (also on failure or Ctrl-C).
 * Exit 0: every gate passes. Exit 1: a gate failed (regression). Exit 2: the audit could not run.
 * Gates, ids and the proof that they fail are in docs/tls-audit.md.
 *
 * Options:
 *   --target 127.0.0.1:PORT   audit this endpoint instead of starting the gateway (127.0.0.1 only)
 *   --mode implicit|starttls  how to speak TLS to --target (default implicit)
 *   --serial                  run the two listeners one after the other (default: in parallel)
 *   --keep                    keep the temp dir (testssl JSON + text output, gateway log)
 *   --gateway PATH            gateway entry point (default apps/gateway/dist/main.js)
 * Env: TESTSSL (testssl binary), TLS_AUDIT_TIMEOUT_S (per listener, default 240).
 */
/* global process, console, Buffer, setTimeout, clearTimeout */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HOST = '127.0.0.1'; // the only address this script ever talks to
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TIMEOUT_S = Number(process.env.TLS_AUDIT_TIMEOUT_S || 240);

// ---------------------------------------------------------------- arguments
function usage(msg) {
  if (msg) process.stderr.write(`tls-audit: ${msg}\n`);
  process.stderr.write(
    'usage: node scripts/tls-audit.mjs [--serial] [--keep] [--gateway PATH] [--target 127.0.0.1:PORT [--mode implicit|starttls]]\n',
  );
  process.exit(2);
}
const opts = { serial: false, keep: false, gateway: join(ROOT, 'apps/gateway/dist/main.js'), target: null, mode: 'implicit' };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--serial') opts.serial = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--gateway') opts.gateway = resolve(val());
    else if (a === '--target') opts.target = val();
    else if (a === '--mode') opts.mode = val();
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!['implicit', 'starttls'].includes(opts.mode)) usage('--mode must be implicit or starttls');
  if (opts.target !== null) {
    const m = /^127\.0\.0\.1:(\d{1,5})$/.exec(opts.target);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) usage('--target must be 127.0.0.1:PORT (loopback only)');
    opts.port = Number(m[1]);
  }
}

// ---------------------------------------------------------------- cleanup of everything we start
const children = new Set(); // { proc, group }
let workDir;
let interrupted = 0; // exit status after a signal
function killAll(signal) {
  for (const c of children) {
    try {
      if (c.group) process.kill(-c.proc.pid, signal);
      else c.proc.kill(signal);
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', () => {
  killAll('SIGKILL');
  if (workDir && !opts.keep) rmSync(workDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    process.stderr.write(`tls-audit: ${sig}, stopping\n`);
    interrupted = sig === 'SIGINT' ? 130 : 143;
    killAll('SIGTERM');
    setTimeout(() => process.exit(interrupted), 3000).unref();
  });
}
function track(proc, group) {
  const c = { proc, group };
  children.add(c);
  proc.once('exit', () => children.delete(c));
  return proc;
}
const exited = (proc) =>
  proc.exitCode !== null || proc.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => proc.once('exit', () => r()));

// ---------------------------------------------------------------- testssl
function findTestssl() {
  const candidates = process.env.TESTSSL ? [process.env.TESTSSL] : ['testssl', 'testssl.sh'];
  for (const c of candidates) {
    const r = spawnSync('sh', ['-c', `command -v "${c}"`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

/** Runs testssl on one listener; resolves { findings, seconds } or { error }. */
async function runTestssl(bin, listener) {
  const json = join(workDir, `${listener.name}.json`);
  const text = join(workDir, `${listener.name}.txt`);
  const args = [
    '--quiet', '--color', '0', '--warnings', 'off',
    '--nodns', 'none', '--ip', HOST,
    '--openssl-timeout', '10',
    ...(listener.mode === 'starttls' ? ['--starttls', 'smtp'] : []),
    // -p protocols, -E ciphers per protocol, -s cipher categories, -f forward secrecy,
    // -U all vulnerabilities (includes -R renegotiation); no certificate/-S, no HTTP/-h checks.
    '--protocols', '--cipher-per-proto', '--std', '--fs', '--vulnerable',
    '--jsonfile', json,
    `${HOST}:${listener.port}`,
  ];
  const started = Date.now();
  const out = [];
  const proc = track(spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd: workDir }), true);
  proc.stdout.on('data', (d) => out.push(d));
  proc.stderr.on('data', (d) => out.push(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-proc.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }, TIMEOUT_S * 1000);
  const code = await new Promise((r) => proc.once('close', (c, s) => r(s ?? c)));
  clearTimeout(timer);
  const seconds = (Date.now() - started) / 1000;
  writeFileSync(text, Buffer.concat(out));
  if (timedOut) return { error: `testssl timed out after ${TIMEOUT_S}s`, seconds };
  // testssl's exit status counts findings; 242..255 and signals are its own errors.
  if (typeof code === 'string' || code >= 242) return { error: `testssl failed (exit ${code}): ${tail(text)}`, seconds };
  let findings;
  try {
    findings = JSON.parse(readFileSync(json, 'utf8'));
  } catch (err) {
    return { error: `no usable testssl JSON (${err.message}): ${tail(text)}`, seconds };
  }
  if (!Array.isArray(findings) || findings.length === 0) return { error: 'empty testssl JSON', seconds };
  return { findings, seconds };
}
const tail = (file) => readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');

// ---------------------------------------------------------------- evaluation
const BAD = new Set(['MEDIUM', 'HIGH', 'CRITICAL']);
/** Findings that never gate: certificate/trust, revocation, CT, CAA, HTTP headers (per-run self-signed cert, not HTTP). */
const IGNORED = /^(cert|OCSP|DNS_CAA|intermediate_cert|chain_of_trust|HSTS|HPKP|banner_|cookie_|security_headers|X-|HTTP_|BREACH|DROWN_hint|scanTime|service|pre_128cipher|NPN|ALPN|clientsimulation)/;
/** Ids judged by the protocol, cipher and renegotiation gates above (not again by the catch-all). */
const OWN_GATE = /^(SSLv2|SSLv3|TLS1|TLS1_1|TLS1_2|TLS1_3|cipherlist_\w+|PFS|cipher-\S+|secure_renego|secure_client_renego)$/;
const VULN_IDS = ['heartbleed', 'CCS', 'ticketbleed', 'ROBOT', 'CRIME_TLS', 'POODLE_SSL', 'fallback_SCSV', 'SWEET32', 'FREAK', 'DROWN', 'LOGJAM', 'BEAST', 'LUCKY13', 'RC4'];
const isVulnId = (id) => VULN_IDS.some((v) => id === v || id.startsWith(`${v}_`) || id.startsWith(`${v}-`));

/** "TLS 1.2   xc030   ECDHE-RSA-AES256-GCM-SHA384   ECDH 253   AESGCM   256   TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" */
function parseCipher(f) {
  const m = /^(SSLv2|SSLv3|TLS 1(?:\.[0-3])?)\s+(x[0-9a-f]+)\s+(\S+)\s+(.*?)\s+(\S+)\s+(\d+)\s+(\S+)\s*$/i.exec(f.finding.trim());
  if (!m) return null;
  return { proto: m[1], hex: m[2], name: m[3], kx: m[4], enc: m[5], bits: Number(m[6]), iana: m[7] };
}
/** Forward-secret AEAD only: TLS 1.3 suites, or TLS 1.2 (EC)DHE with GCM / ChaCha20-Poly1305 / CCM (not CCM_8). */
function cipherProblem(c) {
  if (c.proto === 'TLS 1.3') return /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256|AES_128_CCM_SHA256)$/.test(c.iana) ? null : 'unexpected TLS 1.3 suite';
  if (c.proto !== 'TLS 1.2') return `offered on ${c.proto}`;
  if (!/^TLS_(ECDHE|DHE)_(RSA|ECDSA)_WITH_/.test(c.iana) || !/^(ECDH|DH)\b/.test(c.kx)) return `not forward-secret (kx ${c.kx})`;
  if (!/_GCM_SHA(256|384)$|_CHACHA20_POLY1305_SHA256$|_CCM$/.test(c.iana)) return 'not AEAD';
  return null;
}

function evaluate(findings, mode) {
  const byId = new Map();
  for (const f of findings) if (!byId.has(f.id)) byId.set(f.id, f);
  const show = (f) => `${f.id}=${JSON.stringify(f.finding)} [${f.severity}]`;
  const gates = { protocols: [], ciphers: [], renegotiation: [], vulnerabilities: [], scan: [] };
  const need = (gate, id, ok, what) => {
    const f = byId.get(id);
    if (!f) gates[gate].push(`${id} missing from testssl output (check did not run)`);
    else if (!ok(f)) gates[gate].push(`${show(f)}, expected ${what}`);
  };

  // scan problems: testssl could not test something -> fail closed
  for (const f of findings) {
    if (f.id === 'scanProblem' || f.severity === 'FATAL') gates.scan.push(show(f));
  }

  // 1. protocols
  const notOffered = (f) => /^not offered/.test(f.finding) && !BAD.has(f.severity);
  const offered = (f) => /^offered/.test(f.finding);
  for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) need('protocols', id, notOffered, '"not offered"');
  need('protocols', 'TLS1_2', offered, '"offered"');
  need('protocols', 'TLS1_3', offered, '"offered"');

  // 2. ciphers: categories, forward secrecy, and every suite enumerated per protocol (-E)
  for (const id of ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE']) {
    need('ciphers', id, notOffered, '"not offered"');
  }
  need('ciphers', 'cipherlist_STRONG', offered, '"offered"');
  need('ciphers', 'PFS', (f) => f.severity === 'OK' && /^offered/.test(f.finding), '"offered" [OK]');
  const ciphers = [];
  for (const f of findings) {
    if (!/^cipher-/.test(f.id)) continue;
    const c = parseCipher(f);
    if (!c) {
      gates.ciphers.push(`cannot parse ${show(f)}`);
      continue;
    }
    ciphers.push(c);
    const p = cipherProblem(c);
    if (p) gates.ciphers.push(`${c.proto} ${c.name} (${c.iana}): ${p}`);
  }
  if (!ciphers.some((c) => c.proto === 'TLS 1.2') && byId.get('TLS1_2') && offered(byId.get('TLS1_2'))) {
    gates.ciphers.push('no TLS 1.2 cipher enumerated (cipher-tls1_2_* missing)');
  }
  if (!ciphers.some((c) => c.proto === 'TLS 1.3') && byId.get('TLS1_3') && offered(byId.get('TLS1_3'))) {
    gates.ciphers.push('no TLS 1.3 cipher enumerated (cipher-tls1_3_* missing)');
  }

  // 3. renegotiation
  need('renegotiation', 'secure_renego', (f) => f.severity === 'OK', 'secure renegotiation supported [OK]');
  need('renegotiation', 'secure_client_renego', (f) => f.severity === 'OK' && /not vulnerable/.test(f.finding), '"not vulnerable" [OK]');

  // 4. vulnerabilities: each known check ran, and nothing flagged anywhere
  // ticketbleed is only tested over a direct TLS connection (testssl skips it with --starttls)
  for (const v of VULN_IDS.filter((id) => mode === 'implicit' || id !== 'ticketbleed')) {
    if (![...byId.keys()].some((id) => id === v || id.startsWith(`${v}_`) || id.startsWith(`${v}-`))) {
      gates.vulnerabilities.push(`${v} missing from testssl output (check did not run)`);
    }
  }
  for (const f of findings) {
    if (IGNORED.test(f.id) || f.id === 'scanProblem' || OWN_GATE.test(f.id)) continue;
    const flagged = BAD.has(f.severity) || /VULNERABLE/.test(f.finding) || (isVulnId(f.id) && !['OK', 'INFO'].includes(f.severity));
    if (flagged) gates.vulnerabilities.push(show(f));
  }
  const protocols = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3'].filter((id) => byId.get(id) && offered(byId.get(id)));
  return { gates, protocols, ciphers };
}

// ---------------------------------------------------------------- gateway
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function startGateway() {
  if (!existsSync(opts.gateway)) throw new Error(`${opts.gateway} not found: run \`pnpm build\` first`);
  for (let attempt = 1; ; attempt++) {
    const smtpsPort = await freePort();
    const logFile = join(workDir, 'gateway.log');
    const env = {
      ...process.env,
      SMTP_HOST: HOST,
      SMTP_PORT: '0',
      SMTPS_PORT: String(smtpsPort),
      SMTP_HOSTNAME: 'localhost',
      OPS_HOST: HOST,
      OPS_PORT: '0',
      TLS_CERT_PATH: join(workDir, 'tls', 'tls.crt'),
      TLS_KEY_PATH: join(workDir, 'tls', 'tls.key'),
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      SHUTDOWN_TIMEOUT_MS: '3000',
      UPSTREAM_DEADLINE_MS: '3000', // the shutdown must be able to wait for a relay
      // testssl opens many connections from 127.0.0.1, both listeners at once: the
      // per-IP limit is not what is audited here.
      MAX_CONNECTIONS_PER_IP: '0',
      CAKEMAIL_API_URL: 'http://127.0.0.1:9', // never contacted: no mail is sent
    };
    delete env.REDIS_URL; // the audit needs no shared state (and REDIS_URL would need AUTH_LOCKOUT_KEY)
    const proc = track(spawn(process.execPath, [opts.gateway, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] }), false);
    const log = [];
    const ready = await new Promise((res) => {
      let buf = '';
      const timer = setTimeout(() => res({ error: 'not ready after 20s' }), 20_000);
      const onData = (d) => {
        log.push(d);
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.includes('"gateway ready"')) continue;
          try {
            const j = JSON.parse(line);
            clearTimeout(timer);
            res({ smtpPort: j.smtpPort, smtpsPort: j.smtpsPort });
          } catch {
            /* not JSON */
          }
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', (d) => log.push(d));
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        res({ error: `exited (${sig ?? code}) before ready` });
      });
    });
    const flush = () => writeFileSync(logFile, Buffer.concat(log));
    if (!ready.error && ready.smtpPort && ready.smtpsPort) {
      const gw = { proc, ...ready, flush, stopping: false, died: null };
      // A gateway that dies under the audit (e.g. an unhandled TLS 'error') is a failure of its own.
      proc.once('exit', (code, sig) => {
        if (!gw.stopping) gw.died = `gateway exited during the audit (${sig ?? `code ${code}`})`;
      });
      return gw;
    }
    flush();
    proc.kill('SIGKILL');
    await exited(proc);
    const why = ready.error ?? 'ready line without smtpPort/smtpsPort';
    if (attempt >= 3 || !/EADDRINUSE/.test(readFileSync(logFile, 'utf8'))) {
      throw new Error(`gateway ${why}: ${tail(logFile)}`);
    }
  }
}

async function stopGateway(gw) {
  if (!gw) return;
  gw.stopping = true;
  gw.proc.kill('SIGTERM');
  const t = setTimeout(() => gw.proc.kill('SIGKILL'), 8000);
  await exited(gw.proc);
  clearTimeout(t);
  gw.flush();
}

// ---------------------------------------------------------------- main
async function main() {
  const bin = findTestssl();
  if (!bin) {
    process.stderr.write('tls-audit: testssl not found (apt-get install -y testssl.sh, or set TESTSSL)\n');
    return 2;
  }
  workDir = mkdtempSync(join(tmpdir(), 'tls-audit-'));
  const t0 = Date.now();
  let gw;
  let listeners;
  try {
    if (opts.target) {
      listeners = [{ name: opts.mode, mode: opts.mode, port: opts.port }];
    } else {
      gw = await startGateway();
      listeners = [
        { name: 'starttls', mode: 'starttls', port: gw.smtpPort },
        { name: 'implicit', mode: 'implicit', port: gw.smtpsPort },
      ];
      console.log(`tls-audit: gateway pid ${gw.proc.pid} ready: STARTTLS ${HOST}:${gw.smtpPort}, implicit TLS ${HOST}:${gw.smtpsPort}`);
    }
    console.log(`tls-audit: ${bin} on ${listeners.map((l) => `${l.mode} ${HOST}:${l.port}`).join(', ')}${listeners.length > 1 ? ` (${opts.serial ? 'serial' : 'parallel'})` : ''}`);
    let results;
    if (opts.serial) {
      results = [];
      for (const l of listeners) results.push(await runTestssl(bin, l));
    } else {
      results = await Promise.all(listeners.map((l) => runTestssl(bin, l)));
    }
    const died = gw?.died;
    await stopGateway(gw);
    gw = undefined;
    if (interrupted) return interrupted;

    const failures = [];
    let scanError = false;
    for (const [i, l] of listeners.entries()) {
      const r = results[i];
      const label = `${l.mode === 'starttls' ? 'STARTTLS (--starttls smtp)' : 'implicit TLS'} ${HOST}:${l.port}`;
      console.log(`\n== ${label}  [testssl ${r.seconds.toFixed(0)}s]`);
      if (r.error) {
        scanError = true;
        failures.push(`${l.mode}: audit did not run: ${r.error}`);
        console.log(`  [FAIL] scan: ${r.error}`);
        continue;
      }
      const { gates, protocols, ciphers } = evaluate(r.findings, l.mode);
      console.log(`  protocols offered: ${protocols.map((p) => p.replace('TLS1_', 'TLS1.')).join(' ') || '(none)'}`);
      const byProto = {};
      for (const c of ciphers) (byProto[c.proto] ??= []).push(c.name);
      for (const [p, names] of Object.entries(byProto)) console.log(`  ciphers ${p.padEnd(7)}: ${names.join(' ')}`);
      for (const [gate, problems] of Object.entries(gates)) {
        if (gate === 'scan' && problems.length === 0) continue;
        console.log(`  [${problems.length ? 'FAIL' : 'PASS'}] ${gate}`);
        for (const p of problems) {
          console.log(`         - ${p}`);
          failures.push(`${l.mode}: ${gate}: ${p}`);
        }
        if (gate === 'scan' && problems.length) scanError = true;
      }
    }
    if (died) {
      const log = join(workDir, 'gateway.log');
      console.log(`\n[FAIL] ${died}: ${tail(log)}`);
      failures.push(`gateway: ${died}`);
    }
    const total = ((Date.now() - t0) / 1000).toFixed(0);
    if (failures.length) {
      console.log(`\nTLS AUDIT FAILED (${total}s): ${failures.length} problem(s)`);
      for (const f of failures) console.log(`  ${f}`);
      if (opts.keep) console.log(`  testssl output kept in ${workDir}`);
      const onlyScan = scanError && failures.every((f) => /audit did not run|: scan: /.test(f));
      return onlyScan ? 2 : 1;
    }
    console.log(`\nTLS AUDIT PASSED (${total}s)${opts.keep ? `; output in ${workDir}` : ''}`);
    return 0;
  } finally {
    await stopGateway(gw);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`tls-audit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
