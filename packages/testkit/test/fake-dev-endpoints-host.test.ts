/**
 * The fake's development endpoints (/_fake/*) hold whole emails (bodies, recipients,
 * attachments): like the inbox, they answer only a Host that is an IP address or localhost,
 * never a DNS name that a page elsewhere could rebind to 127.0.0.1.
 */
import { request } from 'node:http';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createFakeCakemail, type FakeCakemail } from '../src/fake-cakemail/index.js';

let fake: FakeCakemail;
let url: string;

beforeEach(async () => {
  fake = createFakeCakemail();
  url = await fake.listen();
});

afterEach(async () => {
  await fake.close();
});

function get(path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

it('serves the recorded calls only to a Host that is an IP address or localhost, as the inbox', async () => {
  const port = new URL(url).port;
  expect(await get('/_fake/calls', `127.0.0.1:${port}`)).toBe(200);
  expect(await get('/', `attacker.example:${port}`)).toBe(403);
  expect(await get('/_fake/calls', `attacker.example:${port}`)).toBe(403);
  expect(await get('/_fake/calls?route=send', `attacker.example:${port}`)).toBe(403);
});
