import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Who holds the CA lock file, and whether that holder can still be alive.
 *
 * A PID alone does not name a process for long: after a crash the PID is reused, and in a
 * container without an init every restart of meshd is PID 1, so "held by process 1" would
 * be true of a lock our own predecessor left. The lock therefore records, beside the PID:
 *
 * - the process start time, field 22 of /proc/<pid>/stat (clock ticks since boot; proc(5)):
 *   a process alive under that PID but started at another time is not the holder;
 * - the boot id, /proc/sys/kernel/random/boot_id (random per boot; proc(5)): a lock written
 *   before a reboot is stale, since start times count from boot;
 * - a random token made once per meshd process: a lock naming our own PID is ours only with
 *   our token (another RootStore in this process waits for it; anything else is a predecessor's),
 *   which holds where /proc is missing too.
 *
 * Without /proc (not Linux) start time and boot id are omitted and a live PID is trusted.
 */
export interface LockOwner {
  pid: number;
  /** /proc/<pid>/stat field 22, as text. */
  startTime?: string;
  bootId?: string;
  token?: string;
}

/** What the judge may ask about processes; the real one reads /proc and sends signal 0. */
export interface ProcessProbe {
  self: LockOwner;
  bootId: string | undefined;
  alive(pid: number): boolean;
  startTime(pid: number): string | undefined;
}

export type LockVerdict = { stale: false } | { stale: true; reason: string };

/** The first line is the bare PID, as older meshd wrote the whole file, so either reads the other's PID. */
export function formatLockOwner(o: LockOwner): string {
  const lines = [String(o.pid)];
  if (o.startTime !== undefined) lines.push(`start ${o.startTime}`);
  if (o.bootId !== undefined) lines.push(`boot ${o.bootId}`);
  if (o.token !== undefined) lines.push(`process ${o.token}`);
  return `${lines.join('\n')}\n`;
}

/** Undefined when the text names no PID (empty, or cut short by a crash of an older writer). */
export function parseLockOwner(text: string): LockOwner | undefined {
  const [first, ...rest] = text.split('\n');
  if (!/^\d+$/.test(first ?? '')) return undefined;
  const owner: LockOwner = { pid: Number(first) };
  for (const line of rest) {
    const [, key, value] = /^(start|boot|process) ([\w-]+)$/.exec(line) ?? [];
    if (value === undefined) continue;
    if (key === 'start') owner.startTime = value;
    else if (key === 'boot') owner.bootId = value;
    else if (key === 'process') owner.token = value;
  }
  return owner;
}

/** Decides whether a recorded holder is gone; pure given the probe. */
export function judgeLockOwner(recorded: LockOwner, probe: ProcessProbe): LockVerdict {
  if (recorded.bootId !== undefined && probe.bootId !== undefined && recorded.bootId !== probe.bootId) {
    return { stale: true, reason: `it was written before the last reboot (boot id ${recorded.bootId}, now ${probe.bootId})` };
  }
  const { self } = probe;
  if (recorded.pid === self.pid) {
    if (recorded.token !== undefined && recorded.token === self.token) return { stale: false };
    const started = recorded.startTime !== undefined && self.startTime !== undefined && recorded.startTime !== self.startTime
      ? ` (this process started at tick ${self.startTime}, the lock's at tick ${recorded.startTime})` : '';
    return { stale: true, reason: `it names PID ${recorded.pid}, which is now this process: the PID was reused after its holder ended${started}` };
  }
  if (!probe.alive(recorded.pid)) return { stale: true, reason: `process ${recorded.pid} is gone` };
  const now = recorded.startTime === undefined ? undefined : probe.startTime(recorded.pid);
  if (now !== undefined && now !== recorded.startTime) {
    return { stale: true, reason: `PID ${recorded.pid} now belongs to a process started at tick ${now}, not the holder (started at tick ${recorded.startTime})` };
  }
  return { stale: false };
}

/** Field 22 (starttime) of a /proc/<pid>/stat line; the command name (field 2) may hold spaces and ')', so count from its last ')'. */
export function startTimeFromStat(stat: string): string | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const start = stat.slice(close + 2).split(' ')[22 - 3]; // the slice begins at field 3 (state)
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

export function readStartTime(pid: number | 'self'): string | undefined {
  try {
    return startTimeFromStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

export function readBootId(): string | undefined {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    return /^[\w-]+$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let selfOwner: LockOwner | undefined;

/** This process as a lock holder (computed once: none of it changes while we run). */
export function currentLockOwner(): LockOwner {
  if (selfOwner === undefined) {
    const owner: LockOwner = { pid: process.pid, token: randomBytes(8).toString('hex') };
    const startTime = readStartTime('self');
    const bootId = readBootId();
    if (startTime !== undefined) owner.startTime = startTime;
    if (bootId !== undefined) owner.bootId = bootId;
    selfOwner = owner;
  }
  return selfOwner;
}

export function systemProcessProbe(): ProcessProbe {
  return { self: currentLockOwner(), bootId: readBootId(), alive: pidAlive, startTime: readStartTime };
}
