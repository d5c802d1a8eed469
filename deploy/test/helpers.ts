/** Starting a gateway process and reading what it logs, for the deploy tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository's root. */
export const root = fileURLToPath(new URL('../../', import.meta.url));

export interface Running {
  readonly child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  /** stdout and stderr so far, for failure messages. */
  output(): string;
  readonly exited: Promise<number | null>;
  /** Waits until `check(stdout)` answers something, for up to `timeoutMs`. */
  waitFor<T>(check: (stdout: string) => T | undefined, timeoutMs?: number): Promise<T>;
  /** SIGTERM to the process (its group when `group`), then its exit code. */
  stop(): Promise<number | null>;
}

export function run(command: string, args: string[], options: { cwd?: string; env: Record<string, string>; group?: boolean }): Running {
  const child = spawn(command, args, { cwd: options.cwd ?? root, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: options.group ?? false });
  let stdout = '';
  let all = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    all += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => (all += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (options.group && child.pid !== undefined) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  return {
    child,
    stdout: () => stdout,
    output: () => all,
    exited,
    async waitFor(check, timeoutMs = 60_000) {
      const start = Date.now();
      for (;;) {
        const found = check(stdout);
        if (found !== undefined) return found;
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before it was ready:\n${all}`);
        if (Date.now() - start > timeoutMs) throw new Error(`timed out; output so far:\n${all}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 60_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface ReadyLine {
  readonly smtpPort: number;
  readonly smtpsPort: number | null;
  readonly opsPort: number;
  readonly upstream: string;
}

/** The JSON "gateway ready" line, once logged. */
export function readyLine(stdout: string): ReadyLine | undefined {
  const line = stdout.split('\n').find((l) => l.includes('"gateway ready"'));
  return line === undefined ? undefined : (JSON.parse(line) as ReadyLine);
}
