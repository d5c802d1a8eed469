import { describe, expect, it } from 'vitest';
import { BOUNCE_SUBJECT, buildBounce, isBounceExempt, type BounceInput } from '../src/relay/bounce.js';
import { MemoryInflightMarks } from '../src/relay/inflight.js';

const input: BounceInput = {
  reportingMta: 'smtp.example.com',
  sender: { id: '7', email: 'sender@example.com' },
  listId: 3,
  refused: [
    { address: 'a@example.net', status: '5.6.0', httpStatus: 422, reason: 'Contact is unsubscribed' },
    { address: 'b@example.net', status: '5.6.0', reason: 'Cakemail rejected the message' },
  ],
  original: { subject: 'Hi <there>', messageId: '<m-1@example.com>', date: 'Mon, 30 Nov 2026 10:00:00 +0000' },
  arrivalDate: new Date(Date.UTC(2026, 10, 30, 10, 0, 5)),
};

describe('buildBounce', () => {
  it('is the email CAKEMAIL-API.md "Bounces" describes', () => {
    const body = buildBounce(input);
    expect(body).toMatchObject({
      sender: { id: '7', name: 'Mail Delivery System' },
      email: 'sender@example.com',
      list_id: 3,
      content: { type: 'transactional', subject: BOUNCE_SUBJECT, encoding: 'utf-8' },
      additional_headers: [
        { name: 'Auto-Submitted', value: 'auto-replied' },
        { name: 'X-Gateway-Bounce', value: 'yes' },
      ],
    });
    const text = body.content.text ?? '';
    expect(text).toContain('Reporting-MTA: dns; smtp.example.com\nArrival-Date: Mon, 30 Nov 2026 10:00:05 +0000\n');
    expect(text).toContain('Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.6.0\nDiagnostic-Code: http; 422 Contact is unsubscribed\n');
    // no HTTP status known: the reply the client saw, as an smtp diagnostic
    expect(text).toContain('Final-Recipient: rfc822; b@example.net\nAction: failed\nStatus: 5.6.0\nDiagnostic-Code: smtp; Cakemail rejected the message\n');
    expect(text).toContain('Subject: Hi <there>\nMessage-ID: <m-1@example.com>\nDate: Mon, 30 Nov 2026 10:00:00 +0000\n');
    expect(body.content.html).toContain('Subject: Hi &#60;there&#62;');
    expect(body.content.html).not.toContain('<there>');
  });
});

describe('isBounceExempt', () => {
  it.each<[string, string, Record<string, string>, string[], boolean]>([
    ['a normal message', 'sender@example.com', {}, [], false],
    ['Auto-Submitted: no', 'sender@example.com', { autoSubmitted: 'no' }, [], false],
    ['Auto-Submitted: NO (comment)', 'sender@example.com', { autoSubmitted: 'NO (a person wrote it)' }, [], false],
    ['the null sender', '', {}, [], true],
    ['Auto-Submitted: auto-replied', 'sender@example.com', { autoSubmitted: 'auto-replied' }, [], true],
    ['Auto-Submitted: auto-generated; params', 'sender@example.com', { autoSubmitted: 'Auto-Generated; owner-email="x@y"' }, [], true],
    ['X-Gateway-Bounce: yes', 'sender@example.com', {}, ['X-Gateway-Bounce: YES'], true],
    ['X-Gateway-Bounce: no', 'sender@example.com', {}, ['x-gateway-bounce: no'], false],
  ])('%s → %s', (_name, from, original, headers, exempt) => {
    const h = headers.map((line) => ({ name: line.split(':')[0] ?? '', value: line.split(':')[1]?.trim() ?? '' }));
    expect(isBounceExempt(from, original, h)).toBe(exempt);
  });
});

describe('MemoryInflightMarks', () => {
  it('claims once until released by its owner or expired', async () => {
    let now = 1_000;
    const marks = new MemoryInflightMarks({ now: () => now });
    const token = await marks.claim('k', 1000);
    expect(token).toBeTypeOf('string');
    expect(await marks.claim('k', 1000)).toBeUndefined();
    await marks.release('k', 'someone-else');
    expect(await marks.claim('k', 1000)).toBeUndefined();
    await marks.release('k', token as string);
    const again = await marks.claim('k', 1000);
    expect(again).toBeTypeOf('string');
    now += 1000; // expired: a crashed attempt's mark
    expect(await marks.claim('k', 1000)).toBeTypeOf('string');
  });

  it('sweeps expired marks at most once a second', async () => {
    const clock = { now: 0 };
    const marks = new MemoryInflightMarks({ now: () => clock.now });
    await marks.claim('crashed', 10); // never released
    clock.now = 20;
    await marks.claim('a', 60_000);
    expect(marks.size).toBe(2); // swept at 0, next at 1000
    clock.now = 1000;
    await marks.claim('b', 60_000);
    expect(marks.size).toBe(2);
  });
});
