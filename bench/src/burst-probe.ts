/**
 * node bench/dist/burst-probe.js [COUNT×MB ...]   (default: 10x20 40x2)
 *
 * The peak memory of a gateway with its default limits under bursts of large messages, as the
 * README's MAX_INFLIGHT_BYTES row states it: the fake Cakemail delays every send 4 s, COUNT
 * sessions each send an MB-megabyte text message at once, and the gateway's idle RSS and peak
 * are printed with the replies (250 for what fitted under the cap, 451 4.3.1 for the rest).
 * The measurement is S3's (`s3Memory`: a small message per session first, then the peak by
 * VmHWM, or sampled where its reset is refused). A fresh gateway per burst, on the Node that
 * runs this.
 */
import { createFakeCakemail, loopbackGatewayEnv, testCertificates } from '@cakemail-smtp/testkit';
import { killAll, startChild } from './children.js';
import { s3Memory } from './scenarios.js';

const MiB = 1024 * 1024;
const SEND_DELAY_MS = 4000;

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
    // the load comes from a few loopback addresses: the per-address limit is not what this measures
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_CONNECTIONS: '10000',
  };
  for (const [i, { count, bytes }] of bursts.entries()) {
    const gateway = await startChild({ name: 'gateway', script: 'gateway-child.js', core: undefined, env });
    try {
      // S3's measurement (idle RSS, then the peak of the burst), with Cakemail answering slowly.
      fake.faults.set('send', { delayMs: SEND_DELAY_MS });
      const r = await s3Memory({ target: { host: '127.0.0.1', port: gateway.port }, pid: gateway.pid }, { kind: 'text', bytes, concurrent: count, tag: `burst${i}` });
      process.stdout.write(
        `node ${process.version}: ${count} x ${bytes / 1_000_000} MB at once: idle RSS ${(r.idleRss / MiB).toFixed(0)} MiB, peak ${(r.peakRss / MiB).toFixed(0)} MiB (${r.method}); replies ${r.replies}\n`,
      );
    } finally {
      fake.faults.clear();
      await gateway.stop(5000);
    }
  }
} finally {
  killAll();
  await fake.close();
}
