/**
 * What a server process costs, read from /proc: CPU (utime + stime of every thread, in clock
 * ticks) and memory (VmRSS, and VmHWM, its peak, which `clear_refs` can reset).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** sysconf(_SC_CLK_TCK): 100 on Linux almost everywhere. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU time used so far by the process (all its threads), in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may hold spaces: count fields from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14
  const stime = Number(fields[12]); // field 15
  return ((utime + stime) * 1e6) / clockTicks();
}

export interface Memory {
  /** Resident set size now, bytes. */
  readonly rss: number;
  /** Its peak since start or the last reset, bytes. */
  readonly hwm: number;
}

export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kib = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match?.[1]) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** Resets VmHWM to the current RSS (`echo 5 > clear_refs`); false when not permitted. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    return false;
  }
  const after = memory(pid);
  // The reset worked when the peak is back near the current RSS.
  return after.hwm - after.rss < 1024 * 1024;
}

/** Samples VmRSS every `everyMs` until stopped; the fallback when the peak cannot be reset. */
export function sampleRss(pid: number, everyMs = 2): { stop(): number } {
  let max = 0;
  const tick = (): void => {
    try {
      max = Math.max(max, memory(pid).rss);
    } catch {
      // the process is gone; keep what we have
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return max;
    },
  };
}

/** The soft limit on open files of this process. */
export function openFileLimit(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'latin1');
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (!match?.[1]) return 1024;
    return match[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(match[1]);
  } catch {
    return 1024;
  }
}

/** CPU time used by everything on the machine (all cores), in microseconds. */
export function systemBusyMicros(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1e6) / clockTicks();
}
