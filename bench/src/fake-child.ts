/**
 * Child process: the testkit's fake Cakemail API in counts mode (it records nothing but per-route
 * counts). The bench switches a delay on `POST /v2/emails` for S5.
 */
import { createFakeCakemail } from '@cakemail-smtp/testkit';
import { exitWithParent, sendToParent, type ParentMessage } from './ipc.js';

exitWithParent();
// S3 sends bodies of control characters that become six bytes of JSON each when a relay keeps
// them (the floor does): the body limit is raised so that memory, not the fake, is measured.
const fake = createFakeCakemail({ record: 'counts', maxBodyBytes: 1024 * 1024 * 1024 });
const url = await fake.listen(0, '127.0.0.1');

process.on('message', (message: ParentMessage) => {
  if (message.type === 'delay') {
    if (message.ms > 0) fake.faults.set('send', { delayMs: message.ms });
    else fake.faults.clear('send');
    sendToParent({ type: 'ack', id: message.id, value: fake.counts() });
  }
});
process.once('SIGTERM', () => {
  void fake.close().finally(() => process.exit(0));
});
sendToParent({ type: 'ready', port: Number(new URL(url).port), url });
