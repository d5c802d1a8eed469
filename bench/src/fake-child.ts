/**
 * Child process: the testkit's fake Cakemail API in counts mode (it records nothing but per-route
 * counts). The bench switches a delay on `POST /v2/emails` for S5.
 */
import { createFakeCakemail } from '@cakemail-smtp/testkit';
import { exitWithParent, sendToParent, type ParentMessage } from './ipc.js';

exitWithParent();
const fake = createFakeCakemail({ record: 'counts' });
const url = await fake.listen(0, '127.0.0.1');

process.on('message', (message: ParentMessage) => {
  if (message.type === 'delay') {
    if (message.ms > 0) fake.faults.set('send', { delayMs: message.ms });
    else fake.faults.clear('send');
    sendToParent({ type: 'ack', id: message.id, value: fake.counts() });
  }
  if (message.type === 'skip-validation') {
    // The fake's base64 check of attachment content (a backtracking regex) overflows V8's regexp
    // stack on content over ~4 MB: "Maximum call stack size exceeded", answered 500. A forced
    // 201 still reads and JSON-parses the whole body, and skips that check.
    if (message.on) {
      fake.faults.set('send', {
        status: 201,
        body: { email: 'large@example.net', object: 'email', submitted: true, data: { id: 'bench-large-1', status: 'queued' } },
      });
    } else fake.faults.clear('send');
    sendToParent({ type: 'ack', id: message.id });
  }
});
process.once('SIGTERM', () => {
  void fake.close().finally(() => process.exit(0));
});
sendToParent({ type: 'ready', port: Number(new URL(url).port), url });
