import { Redis } from 'ioredis';

/**
 * The commands clients sent to the Redis at `url` while `run` ran, lower-cased, those naming a key
 * that contains `keyPart` only: what a client sent, not the calls its scripts made (MONITOR
 * shows those with the source "lua").
 */
export async function commandsSent(url: string, keyPart: string, run: () => Promise<void>): Promise<string[]> {
  const client = new Redis(url);
  const monitor = await client.monitor(); // a connection of its own, in MONITOR mode
  const seen: string[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && args.some((arg) => arg.includes(keyPart))) seen.push(String(args[0]).toLowerCase());
  });
  try {
    await run();
    await new Promise((resolve) => setTimeout(resolve, 200)); // MONITOR's lines trail the replies
    return seen;
  } finally {
    monitor.disconnect();
    client.disconnect();
  }
}
