import { describe, expect, it } from 'vitest';
import { formatQueueList } from '../src/mailq.js';
import type { QueueEntry } from '../src/types.js';

const entry: QueueEntry = {
  id: '0123456789abcdef0123',
  account: '1001',
  sender: 'sender@example.com',
  recipients: ['a@example.net', 'b@example.net'],
  state: 'delayed',
  queuedAt: 0,
  ageSeconds: 2 * 3600 + 14 * 60,
  attempts: 3,
  lastError: 'http; 503 Service Unavailable',
  nextAttemptAt: 0,
  size: 3519,
  isBounce: false,
  keyId: 'k1',
};

describe('formatQueueList', () => {
  it('prints mailq-like blocks with the last error and the recipients', () => {
    const text = formatQueueList([entry, { ...entry, id: 'ffffffffffffffffffff', isBounce: true, lastError: undefined, recipients: ['c@example.net'], ageSeconds: 3 * 86_400 }]);
    expect(text.split('\n')).toEqual([
      '-Queue ID----------- --Size-- --Age-- -Tries- -State--- -Account-- -Sender/Recipient-------',
      '0123456789abcdef0123     3519   2h14m       3 delayed   1001       sender@example.com',
      '                      (http; 503 Service Unavailable)',
      '                      a@example.net',
      '                      b@example.net',
      '',
      'ffffffffffffffffffff     3519   3d00h       3 delayed   1001       sender@example.com (bounce)',
      '                      c@example.net',
      '',
      '-- 7 Kbytes in 2 Requests.',
      '',
    ]);
  });

  it('says when the queue is empty', () => {
    expect(formatQueueList([])).toBe('Mail queue is empty\n');
  });
});
