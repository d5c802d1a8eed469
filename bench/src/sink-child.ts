/**
 * Child process: the baseline. The bare smtp-server library, as it is (its 100 ms greeting wait
 * included), with the gateway's TLS settings and certificate, AUTH PLAIN/LOGIN checked against the
 * seeded login, and a DATA handler that discards the message. Reverse DNS is off, as in the
 * gateway: with it, every connection waits on a PTR lookup for 127.0.0.1. Measured in S1 only.
 */
import { SMTPServer } from 'smtp-server';
import { baselineOptions } from './baseline-options.js';
import { exitWithParent, sendToParent } from './ipc.js';

exitWithParent();
const env = process.env;
const user = env['SINK_USER'] ?? 'dev@example.com';
const password = env['SINK_PASSWORD'] ?? 'dev-password';

const server = new SMTPServer({
  ...baselineOptions(env),
  onAuth(auth, _session, callback) {
    if (auth.username === user && auth.password === password) return callback(null, { user: auth.username });
    callback(new Error('Invalid username or password'));
  },
  onMailFrom(_address, _session, callback) {
    callback();
  },
  onRcptTo(_address, _session, callback) {
    callback();
  },
  onData(stream, _session, callback) {
    stream.on('end', () => callback(null, 'Ok: discarded'));
    stream.resume();
  },
});
server.on('error', () => {}); // failed handshakes, resets: not the baseline's concern

server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  sendToParent({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
