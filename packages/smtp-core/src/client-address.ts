/**
 * The address a client is counted under, for per-IP connection limits and
 * login lockouts. An IPv4 client is its address (a dual-stack listener's
 * `::ffff:192.0.2.1` is `192.0.2.1`). An IPv6 client is its /64: one subscriber
 * gets a whole /64, so counting single IPv6 addresses would let one attacker
 * use 2^64 of them and grow the counters without bound.
 */
import { isIPv6 } from 'node:net';

export function clientKey(address: string): string {
  const ip = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = ip.includes('::') && tail ? tail.split(':') : [];
  // an embedded IPv4 tail (::1.2.3.4) lies in the last 64 bits: not part of the prefix
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
