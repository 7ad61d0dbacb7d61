import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  currentLockOwner, formatLockOwner, judgeLockOwner, parseLockOwner, readStartTime, startTimeFromStat,
  type LockOwner, type ProcessProbe,
} from '../../src/ca/lock-owner.js';

const BOOT = '97ad6347-fda5-4e70-a93e-00eb885ef259';
const SELF: LockOwner = { pid: 1, startTime: '5000', bootId: BOOT, token: 'aaaa' };

/** A probe over a fixed process table: pid → start time (undefined: alive, /proc unreadable). */
function probe(table: Record<number, string | undefined>, opts: { bootId?: string; self?: LockOwner } = {}): ProcessProbe {
  return {
    self: opts.self ?? SELF,
    bootId: 'bootId' in opts ? opts.bootId : BOOT,
    alive: (pid) => pid in table,
    startTime: (pid) => table[pid],
  };
}

t.test('the lock file: PID first (what older meshd wrote and reads), then start time, boot id, token', async (t) => {
  t.equal(formatLockOwner(SELF), `1\nstart 5000\nboot ${BOOT}\nprocess aaaa\n`);
  t.same(parseLockOwner(formatLockOwner(SELF)), SELF, 'round trip');
  t.same(parseLockOwner('4242\n'), { pid: 4242 }, 'an older meshd\'s lock: the PID alone');
  t.equal(parseLockOwner(''), undefined, 'empty: names no process');
  t.equal(parseLockOwner('x\nstart 1\n'), undefined);
  t.same(parseLockOwner('7\nstart 12\nstart 1 2\nevil $(rm)\n'), { pid: 7, startTime: '12' }, 'malformed lines are ignored');
});

t.test('who holds it: boot id, own PID and token, liveness, start time', async (t) => {
  const rows: Array<[string, LockOwner, ProcessProbe, RegExp | false]> = [
    ['this very process (another store in it)', SELF, probe({ 1: '5000' }), false],
    ['our PID, another start time: a predecessor (PID 1 in a container after a crash)', { pid: 1, startTime: '4000', bootId: BOOT, token: 'bbbb' }, probe({ 1: '5000' }),
      /^it names PID 1, which is now this process: the PID was reused after its holder ended \(this process started at tick 5000, the lock's at tick 4000\)$/],
    ['our PID, same start tick but another token', { ...SELF, token: 'bbbb' }, probe({ 1: '5000' }), /names PID 1, which is now this process/],
    ['our PID written by an older meshd (PID only)', { pid: 1 }, probe({ 1: '5000' }), /names PID 1, which is now this process/],
    ['our PID, no /proc anywhere: the token still tells', { pid: 1, token: 'bbbb' }, probe({ 1: undefined }, { self: { pid: 1, token: 'aaaa' }, bootId: undefined }), /now this process/],
    ['written before a reboot', { pid: 77, startTime: '10', bootId: 'old-boot' }, probe({ 77: '10' }), /^it was written before the last reboot \(boot id old-boot, now 97ad/],
    ['a process that is gone', { pid: 77, startTime: '10', bootId: BOOT }, probe({}), /^process 77 is gone$/],
    ['a live holder', { pid: 77, startTime: '10', bootId: BOOT, token: 'cccc' }, probe({ 77: '10' }), false],
    ['a live process that reused the holder\'s PID', { pid: 77, startTime: '10', bootId: BOOT }, probe({ 77: '99' }),
      /^PID 77 now belongs to a process started at tick 99, not the holder \(started at tick 10\)$/],
    ['a live PID and no /proc to compare: trusted', { pid: 77, startTime: '10' }, probe({ 77: undefined }, { bootId: undefined }), false],
    ['an older meshd\'s lock with a live PID: trusted', { pid: 77 }, probe({ 77: '10' }), false],
  ];
  for (const [what, recorded, p, stale] of rows) {
    const verdict = judgeLockOwner(recorded, p);
    if (stale === false) t.same(verdict, { stale: false }, what);
    else {
      t.equal(verdict.stale, true, `${what}: stale`);
      if (verdict.stale) t.match(verdict.reason, stale, what);
    }
  }
});

t.test('start time is field 22 of /proc/<pid>/stat, counted after the last ")" of the command name', async (t) => {
  const fields = (comm: string) => `123 (${comm}) S 1 123 123 0 -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 987654 2654208 365 18446744073709551615`;
  t.equal(startTimeFromStat(fields('meshd')), '987654');
  t.equal(startTimeFromStat(fields('a) b (c')), '987654', 'a command name with spaces and parentheses');
  t.equal(startTimeFromStat('garbage'), undefined);
  const own = readFileSync('/proc/self/stat', 'latin1').split(' ');
  t.equal(readStartTime(process.pid), own[21], 'this process, read from /proc');
  t.equal(currentLockOwner().startTime, own[21]);
  t.equal(currentLockOwner().bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim());
  t.equal(currentLockOwner(), currentLockOwner(), 'one owner per process');
  t.equal(readStartTime(2 ** 22 + 12345), undefined, 'no such process');
});
