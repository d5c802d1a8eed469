// What the two baselines (sink and floor) share with the gateway's listener: the same TLS
// settings and certificate, AUTH PLAIN/LOGIN, no reverse DNS, the same size limit.
import { readFileSync } from 'node:fs';
import type { SMTPServerOptions } from 'smtp-server';
import { serverTlsSettings } from '@cakemail-smtp/tls';

export function baselineOptions(env: NodeJS.ProcessEnv): SMTPServerOptions {
  return {
    ...serverTlsSettings,
    key: readFileSync(env['TLS_KEY_PATH'] ?? ''),
    cert: readFileSync(env['TLS_CERT_PATH'] ?? ''),
    secure: false,
    name: 'localhost',
    logger: false,
    disableReverseLookup: true,
    authMethods: ['PLAIN', 'LOGIN'],
    size: Number(env['MAX_MESSAGE_SIZE'] ?? 26_214_400),
  };
}
