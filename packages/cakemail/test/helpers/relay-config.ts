// A complete RelayConfig for tests: the relay takes its options as given, so tests give them all.
import { hostname } from 'node:os';
import type { RelayConfig } from '../../src/relay/backend.js';

export function relayConfig(apiUrl: string, overrides: Partial<RelayConfig> = {}): RelayConfig {
  return {
    apiUrl,
    timeoutMs: 2000,
    deadlineMs: 1500,
    emailType: 'transactional',
    connections: 16,
    authCacheTtlMs: 60_000,
    inflightWaitMs: 15_000,
    bounces: true,
    hostname: hostname(),
    ...overrides,
  };
}
