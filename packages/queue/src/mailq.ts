/**
 * `list()` as text, in the shape of Postfix's `mailq`, for the gateway's
 * `smtp-gateway queue list`: one block per message (id, size, age, attempts,
 * state, account, sender), its last error in parentheses, then its recipients.
 */
import type { QueueEntry } from './types.js';

function age(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86_400)}d${String(Math.floor((seconds % 86_400) / 3600)).padStart(2, '0')}h`;
}

export function formatQueueList(entries: readonly QueueEntry[]): string {
  if (entries.length === 0) return 'Mail queue is empty\n';
  const indent = ' '.repeat(22);
  const lines = ['-Queue ID----------- --Size-- --Age-- -Tries- -State--- -Account-- -Sender/Recipient-------'];
  let bytes = 0;
  for (const e of entries) {
    bytes += e.size;
    lines.push(
      [
        e.id.padEnd(20),
        String(e.size).padStart(8),
        age(e.ageSeconds).padStart(7),
        String(e.attempts).padStart(7),
        e.state.padEnd(9),
        e.account.padEnd(10),
        e.isBounce ? `${e.sender} (bounce)` : e.sender,
      ].join(' '),
    );
    if (e.lastError) lines.push(`${indent}(${e.lastError})`);
    for (const r of e.recipients) lines.push(`${indent}${r}`);
    lines.push('');
  }
  lines.push(`-- ${Math.ceil(bytes / 1024)} Kbytes in ${entries.length} Request${entries.length === 1 ? '' : 's'}.`);
  return `${lines.join('\n')}\n`;
}
