import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';

describe('createLogger without a destination', () => {
  it('writes each line to stdout synchronously, not through the thread pool', () => {
    const logger = createLogger({ level: 'info', format: 'json' });
    const stream = (logger as unknown as Record<symbol, { sync?: boolean; fd?: number }>)[pino.symbols.streamSym];
    expect(stream?.fd).toBe(1);
    expect(stream?.sync).toBe(true);
  });
});
