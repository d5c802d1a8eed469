/**
 * `smtp-gateway queue list | retry <id|--all> | delete <id> | bounce <id>`:
 * Postfix's mailq and postqueue/postsuper for the store-and-forward queue.
 * It opens the queue in REDIS_URL without QUEUE_ENCRYPTION_KEY (the operator
 * functions read clear metadata only), so it never sees a body or a token.
 * Exit codes: 0 done, 1 not done (not in the queue, being delivered, Redis
 * unreachable), 2 usage.
 */
import { openQueue, formatQueueList, type MessageQueue } from '@cakemail-smtp/queue';

export interface QueueCliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export const queueUsage = `usage: smtp-gateway queue <command>

  list               the queued messages: id, size, age, attempts, state, account,
                     sender, last error, recipients (never a body or a token)
  retry <id>         deliver a message waiting for its next attempt now
  retry --all        the same for every queued message
  delete <id>        delete a message without a bounce (like postsuper -d)
  bounce <id>        return a message's recipients to its sender now, with a bounce

environment: REDIS_URL (required: the gateway's); QUEUE_ENCRYPTION_KEY is not needed
exit codes: 0 done, 1 not done (not in the queue, being delivered, Redis unreachable), 2 usage
`;

class UsageError extends Error {}

type Command = { readonly name: 'list' } | { readonly name: 'retry' | 'delete' | 'bounce'; readonly id: string };

function parse(argv: readonly string[]): Command | 'help' {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError('no command given');
  if (name === '--help' || name === '-h' || name === 'help') return 'help';
  if (name === 'list') {
    if (rest.length) throw new UsageError(`list takes no argument (got ${JSON.stringify(rest[0])})`);
    return { name };
  }
  if (name === 'retry' || name === 'delete' || name === 'bounce') {
    const [id, extra] = rest;
    if (id === undefined) throw new UsageError(`${name} needs a queue id${name === 'retry' ? ' or --all' : ''}`);
    if (extra !== undefined) throw new UsageError(`${name} takes one queue id (got ${JSON.stringify(extra)} too)`);
    if (id === '--all' && name !== 'retry') throw new UsageError(`--all goes with retry only`);
    if (id.startsWith('-') && id !== '--all') throw new UsageError(`unknown option ${JSON.stringify(id)}`);
    return { name, id };
  }
  throw new UsageError(`unknown command ${JSON.stringify(name)}`);
}

/** host:port of a Redis URL, without its password, for messages. */
function where(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'REDIS_URL';
  }
}

async function run(queue: MessageQueue, command: Command, out: (line: string) => void): Promise<number> {
  switch (command.name) {
    case 'list':
      out(formatQueueList(await queue.list()).trimEnd());
      return 0;
    case 'retry': {
      if (command.id === '--all') {
        const counts = await queue.retry('all');
        const now = counts.promoted + counts.retried;
        out(
          `retry: ${now} to deliver now, ${counts['already-waiting']} already waiting for a worker, ${counts.active} being delivered` +
            (counts['not-found'] ? `, ${counts['not-found']} gone meanwhile` : ''),
        );
        return 0;
      }
      const outcome = await queue.retry(command.id);
      const text = {
        promoted: 'to deliver now',
        retried: 'to deliver now (it had failed; its attempts start again)',
        'already-waiting': 'already waiting for a worker',
        active: 'being delivered now',
        'not-found': 'not in the queue',
      }[outcome];
      out(`${command.id}: ${text}`);
      return outcome === 'not-found' ? 1 : 0;
    }
    case 'delete': {
      const outcome = await queue.remove(command.id);
      const text = {
        removed: 'deleted, without a bounce',
        active: 'being delivered now, not deleted; try again in a moment',
        'not-found': 'not in the queue',
      }[outcome];
      out(`${command.id}: ${text}`);
      return outcome === 'removed' ? 0 : 1;
    }
    case 'bounce': {
      const outcome = await queue.bounce(command.id);
      out(
        `${command.id}: ${outcome === 'scheduled' ? 'returning to its sender: a worker bounces the recipients not delivered yet, now (or when an attempt under way ends)' : 'not in the queue'}`,
      );
      return outcome === 'scheduled' ? 0 : 1;
    }
  }
}

export async function runQueueCli(argv: readonly string[], io: QueueCliIo): Promise<number> {
  const fail = (message: string, code: number): number => {
    io.stderr.write(`smtp-gateway queue: ${message}\n${code === 2 ? `\n${queueUsage}` : ''}`);
    return code;
  };
  let command: Command | 'help';
  try {
    command = parse(argv);
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, 2);
    throw err;
  }
  if (command === 'help') {
    io.stdout.write(queueUsage);
    return 0;
  }
  const redisUrl = io.env['REDIS_URL']?.trim();
  if (!redisUrl) return fail("REDIS_URL: required (the gateway's Redis, which holds the queue)", 2);
  // The URL may hold a password: named, never shown.
  if (!/^rediss?:\/\//.test(redisUrl)) return fail('REDIS_URL: must be a redis:// or rediss:// URL', 2);

  // The connection's own error ("connect ECONNREFUSED …") says more than the rejected connect ("Connection is closed").
  let cause: string | undefined;
  const logger = { info() {}, error() {}, warn: (obj: object) => void (cause ??= (obj as { err?: string }).err) };
  let queue: MessageQueue;
  try {
    queue = await openQueue({ redisUrl, maxBytes: 0, logger });
  } catch (err) {
    return fail(`cannot reach Redis at ${where(redisUrl)}: ${cause ?? (err instanceof Error ? err.message : String(err))}`, 1);
  }
  try {
    return await run(queue, command, (line) => io.stdout.write(`${line}\n`));
  } catch (err) {
    return fail(`Redis at ${where(redisUrl)}: ${err instanceof Error ? err.message : String(err)}`, 1);
  } finally {
    await queue.close().catch(() => undefined);
  }
}
