import { describe, expect, it } from 'vitest';
import { Registry, Counter } from 'prom-client';
import { createOpsServer } from '../src/ops.js';

describe('ops server', () => {
  it('serves liveness, readiness and metrics', async () => {
    const registry = new Registry();
    new Counter({ name: 'smtp_gateway_test_total', help: 'test', registers: [registry] }).inc();
    let notReady: string | undefined = 'starting';
    const ops = createOpsServer({ host: '127.0.0.1', port: 0, registry, notReady: () => notReady });
    const port = await ops.listen();
    const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
    expect((await get('/health/live')).status).toBe(200);
    const starting = await get('/health/ready');
    expect(starting.status).toBe(503);
    expect(await starting.text()).toBe('not ready: starting\n');
    notReady = undefined;
    expect((await get('/health/ready')).status).toBe(200);
    const metrics = await get('/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('smtp_gateway_test_total 1');
    expect((await get('/nope')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/health/live`, { method: 'POST' })).status).toBe(405);
    await ops.close();
  });
});
