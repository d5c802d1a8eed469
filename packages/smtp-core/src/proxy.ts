/**
 * PROXY protocol (HAProxy's proxy-protocol.txt, v1 text and v2 binary) from
 * trusted load balancers. This module only frames the header on the socket
 * (finds where it ends, with a size bound); the fields are parsed by
 * proxy-protocol-js. Trust is by peer address (CIDRs, node:net BlockList).
 */
import { BlockList, isIP, isIPv4, isIPv6, type Socket } from 'node:net';
import proxyProtocol from 'proxy-protocol-js';

const { V1ProxyProtocol, V2ProxyProtocol, Command, TransportProtocol, INETProtocol, IPv4ProxyAddress, IPv6ProxyAddress } = proxyProtocol;

/** `a.b.c.d`, `::ffff:a.b.c.d` (a dual-stack listener's IPv4 peer) → `a.b.c.d`; IPv6 as given. */
export function peerAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address.trim());
  return mapped?.[1] ?? address.trim().toLowerCase();
}

/**
 * Parses a comma list of CIDRs (`10.0.0.0/8, fd00::/8`); a bare address is
 * one host. Throws with the offending entry.
 */
export function trustedPeers(list: string | readonly string[]): BlockList {
  const entries = (typeof list === 'string' ? list.split(',') : list).map((entry) => entry.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error('no CIDR given');
  const blocks = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const length = prefix === undefined ? bits : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (family === 0 || extra !== undefined || !(length >= 0 && length <= bits)) throw new Error(`not a CIDR: ${JSON.stringify(entry)}`);
    // every address would be believed: any client could choose its own
    if (length === 0) throw new Error(`${JSON.stringify(entry)} trusts every address: list the balancers' own ranges`);
    blocks.addSubnet(address, length, family === 4 ? 'ipv4' : 'ipv6');
  }
  return blocks;
}

/** True when `address` (as a socket reports it) is in `peers`. */
export function isTrusted(peers: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const ip = peerAddress(address);
  if (isIPv4(ip)) return peers.check(ip, 'ipv4');
  return isIPv6(ip) && peers.check(ip, 'ipv6');
}

/** What a header said. */
export type ProxyHeader =
  /** The client's source address and port, relayed by the balancer. */
  | { readonly kind: 'proxied'; readonly version: 1 | 2; readonly address: string; readonly port: number }
  /**
   * The balancer speaks for itself: v2 LOCAL (health checks), v1 `UNKNOWN`, or
   * v2 with an address family that is not IP. The connection is the peer's own.
   */
  | { readonly kind: 'local'; readonly version: 1 | 2 };

export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
}

/** v1: "PROXY" … CRLF, at most 107 octets (proxy-protocol.txt 2.1). */
const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v2: 16 octets, then the announced length; TLVs included, bounded here. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_MAX = 16 + 2048;

/** True while `have` can still be the start of `prefix`. */
function startsLike(have: Buffer, prefix: Buffer): boolean {
  const n = Math.min(have.length, prefix.length);
  return have.subarray(0, n).equals(prefix.subarray(0, n));
}

/**
 * Where the header in `buffer` ends: its length, 0 when more octets are
 * needed. Throws when the octets cannot be a header.
 */
export function headerLength(buffer: Buffer): number {
  if (buffer.length === 0) return 0;
  if (buffer[0] === V2_SIGNATURE[0]) {
    if (!startsLike(buffer, V2_SIGNATURE)) throw new ProxyHeaderError('not a PROXY protocol header');
    if (buffer.length < 16) return 0;
    const total = 16 + buffer.readUInt16BE(14);
    if (total > V2_MAX) throw new ProxyHeaderError('PROXY v2 header too long');
    return buffer.length >= total ? total : 0;
  }
  if (!startsLike(buffer, V1_PREFIX)) throw new ProxyHeaderError('not a PROXY protocol header');
  const lf = buffer.subarray(0, V1_MAX).indexOf(0x0a);
  if (lf < 0) {
    if (buffer.length >= V1_MAX) throw new ProxyHeaderError('PROXY v1 header too long');
    return 0;
  }
  return lf + 1;
}

function ipv6(bytes: readonly number[]): string {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

/** Parses one whole header, as framed by headerLength(). Throws ProxyHeaderError. */
export function parseHeader(header: Buffer): ProxyHeader {
  if (header[0] === V2_SIGNATURE[0]) {
    let parsed;
    try {
      parsed = V2ProxyProtocol.parse(new Uint8Array(header));
    } catch (err) {
      throw new ProxyHeaderError(`invalid PROXY v2 header: ${(err as { message?: string }).message ?? 'unparsable'}`);
    }
    if (parsed.command === Command.LOCAL) return { kind: 'local', version: 2 };
    const source = parsed.proxyAddress;
    // UNSPEC and UNIX carry no client IP: the connection is the peer's own.
    if (!(source instanceof IPv4ProxyAddress) && !(source instanceof IPv6ProxyAddress)) return { kind: 'local', version: 2 };
    if (parsed.transportProtocol !== TransportProtocol.STREAM) throw new ProxyHeaderError('PROXY v2 header for a datagram connection');
    const bytes = source.sourceAddress.address;
    const address = source instanceof IPv4ProxyAddress ? bytes.join('.') : ipv6(bytes);
    if (!isIP(address)) throw new ProxyHeaderError('invalid PROXY v2 source address');
    return { kind: 'proxied', version: 2, address, port: source.sourcePort };
  }
  const line = header.toString('latin1');
  if (!line.endsWith('\r\n')) throw new ProxyHeaderError('PROXY v1 header does not end with CRLF');
  // "PROXY UNKNOWN" with or without addresses: the receiver uses the real endpoints.
  if (/^PROXY UNKNOWN(?: [^\r\n]*)?\r\n$/.test(line)) return { kind: 'local', version: 1 };
  let parsed;
  try {
    parsed = V1ProxyProtocol.parse(line);
  } catch (err) {
    throw new ProxyHeaderError(`invalid PROXY v1 header: ${(err as { message?: string }).message ?? 'unparsable'}`);
  }
  const { source, destination } = parsed;
  const valid = parsed.inetProtocol === INETProtocol.TCP4 ? isIPv4 : isIPv6;
  if (!valid(source.ipAddress) || !valid(destination.ipAddress)) throw new ProxyHeaderError('invalid PROXY v1 address');
  if (source.port > 65_535 || destination.port > 65_535) throw new ProxyHeaderError('invalid PROXY v1 port');
  return { kind: 'proxied', version: 1, address: source.ipAddress.toLowerCase(), port: source.port };
}

export type ProxyFailure =
  /** Octets that are not a PROXY header. */
  | 'invalid'
  /** No complete header within the deadline. */
  | 'missing'
  /** The peer closed before sending anything (a TCP health check): not an error. */
  | 'closed';

/**
 * Reads one PROXY header from `socket`, leaving whatever follows it unread
 * (unshifted) for TLS or SMTP. Exactly one of the callbacks is called.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs: number,
  onHeader: (header: ProxyHeader) => void,
  onFailure: (failure: ProxyFailure, detail: string) => void,
): void {
  let buffer: Buffer = Buffer.alloc(0);
  let done = false;
  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onEnd);
    socket.removeListener('error', onEnd);
  };
  const fail = (failure: ProxyFailure, detail: string): void => {
    if (done) return;
    finish();
    onFailure(failure, detail);
  };
  const onEnd = (): void => fail(buffer.length === 0 ? 'closed' : 'invalid', 'connection closed before a complete PROXY header');
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while (!done && (chunk = socket.read() as Buffer | null) !== null) {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
      let length: number;
      try {
        length = headerLength(buffer);
      } catch (err) {
        return fail('invalid', (err as Error).message);
      }
      if (length === 0) continue;
      let header: ProxyHeader;
      try {
        header = parseHeader(buffer.subarray(0, length));
      } catch (err) {
        return fail('invalid', (err as Error).message);
      }
      finish();
      if (buffer.length > length) socket.unshift(buffer.subarray(length));
      onHeader(header);
      return;
    }
  };
  const timer = setTimeout(() => fail('missing', 'no PROXY header in time'), timeoutMs);
  timer.unref();
  socket.on('readable', onReadable);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.once('error', onEnd);
}
