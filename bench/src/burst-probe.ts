/**
 * node bench/dist/burst-probe.js [COUNT×MB ...]   (default: 10x20 40x2)
 *
 * The peak memory of a gateway with its default limits under bursts of large messages, as the
 * README's MAX_INFLIGHT_BYTES row states it: the fake Cakemail delays every send 4 s, COUNT
 * sessions each send an MB-megabyte text message at once, and the gateway's idle RSS and peak
 * (VmHWM, reset just before the burst) are printed with the replies (250 for what fitted under
 * the cap, 451 4.3.1 for the rest). A fresh gateway per burst, on the Node that runs this.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFakeCakemail, loopbackGatewayEnv, testCertificates } from '@cakemail-smtp/testkit';
import { killAll, startChild } from './children.js';
import { largeMessages, SENDER } from './messages.js';
import { SmtpConnection } from './smtp-conn.js';

const LOGIN = { user: 'dev@example.com', password: 'dev-password' };
const SEND_DELAY_MS = 4000;

/** VmRSS and VmHWM of `pid`, in MiB. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

const bursts = (process.argv.length > 2 ? process.argv.slice(2) : ['10x20', '40x2']).map((arg) => {
  const m = /^(\d+)x(\d+(?:\.\d+)?)$/.exec(arg);
  if (!m) throw new Error(`burst-probe: ${arg}: expected COUNTxMB, e.g. 10x20`);
  return { count: Number(m[1]), bytes: Math.round(Number(m[2]) * 1_000_000) };
});

const fake = createFakeCakemail();
try {
  const url = await fake.listen(0, '127.0.0.1');
  const certs = await testCertificates();
  const env = {
    PATH: process.env['PATH'] ?? '',
    ...loopbackGatewayEnv(certs),
    CAKEMAIL_API_URL: url,
    LOG_LEVEL: 'warn',
    // every session from 127.0.0.1: the per-address limit is not what this measures
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_CONNECTIONS: '10000',
  };
  for (const { count, bytes } of bursts) {
    const gateway = await startChild({ name: 'gateway', script: 'gateway-child.js', core: undefined, env });
    try {
      const target = { host: '127.0.0.1', port: gateway.port };
      const conns = await Promise.all(Array.from({ length: count }, () => SmtpConnection.ready(target, LOGIN)));
      const factory = largeMessages('text', bytes);
      const messages = conns.map((_, i) => factory.message(`burst${i}@example.net`, i));
      fake.faults.set('send', { delayMs: SEND_DELAY_MS });
      await sleep(500);
      const idle = memory(gateway.pid);
      writeFileSync(`/proc/${gateway.pid}/clear_refs`, '5');
      const codes = await Promise.all(conns.map(async (conn, i) => (await conn.send(SENDER, `burst${i}@example.net`, messages[i] as Buffer)).reply.code));
      const peak = memory(gateway.pid).hwm;
      const replies: Record<number, number> = {};
      for (const code of codes) replies[code] = (replies[code] ?? 0) + 1;
      process.stdout.write(
        `node ${process.version}: ${count} x ${bytes / 1_000_000} MB at once: idle RSS ${idle.rss.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB; replies ${JSON.stringify(replies)}\n`,
      );
      fake.faults.clear();
      for (const conn of conns) conn.destroy();
    } finally {
      await gateway.stop(5000);
    }
  }
} finally {
  killAll();
  await fake.close();
}
