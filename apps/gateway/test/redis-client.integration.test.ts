/**
 * With REDIS_URL the gateway opens one Redis connection, shared by the lockout
 * counters, the accepted-recipient store and the in-flight marks, and closes
 * it on shutdown. Counted with CLIENT LIST on a redis-server of the test's own.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_SENDER, DEFAULT_USER, startRedisServer, type TestRedis } from '@cakemail-smtp/testkit';
import { sentTo, startGateway, type RunningGateway } from './e2e-helpers.js';

let redis: TestRedis;
let gw: RunningGateway | undefined;

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await gw?.close();
  await redis.stop();
});

/** CLIENT LIST's lines, from a raw connection, without this connection's own line. */
async function otherClients(url: string): Promise<string[]> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.setEncoding('utf8');
  socket.write('CLIENT LIST\r\n');
  let reply = '';
  for await (const chunk of socket) {
    reply += chunk as string;
    const header = /^\$(\d+)\r\n/.exec(reply);
    if (header && Buffer.byteLength(reply) >= header[0].length + Number(header[1]) + 2) break;
  }
  socket.destroy();
  return reply
    .split(/\r?\n/)
    .slice(1)
    .filter((line) => line.startsWith('id=') && !/ cmd=client\|list /.test(line));
}

it('opens one Redis connection for every store, used by a login and a message, and closes it on shutdown', async () => {
  gw = await startGateway({ env: { REDIS_URL: redis.url, AUTH_LOCKOUT_KEY: 'redis-client-test-lockout-key-0123456789' } });
  // a failed login (the lockout counters) and a message (the accepted store and in-flight marks)
  const refused = await gw.send({ from: DEFAULT_SENDER.email, to: 'a@example.net', subject: 'x', text: 'x' }, { ...DEFAULT_USER, password: 'wrong' });
  expect(refused.code).toBe(535);
  expect((await gw.send({ from: DEFAULT_SENDER.email, to: 'a@example.net', subject: 'one client', text: 'hello' })).ok).toBe(true);
  expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);

  expect(await otherClients(redis.url)).toHaveLength(1);

  await gw.close();
  gw = undefined;
  // QUIT is answered before the server drops the connection: wait for it to go
  let left = await otherClients(redis.url);
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    left = await otherClients(redis.url);
  }
  expect(left).toEqual([]);
});
