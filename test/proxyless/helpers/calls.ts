import type { Test } from 'tap';
import type { GrpcProcess, LineProcess, Line } from './child.js';
import type { ProxylessMesh } from './mesh.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface CallResult { server: string; transport: string; peer: string }

/**
 * Calls until one succeeds: an XdsServer reports serving before its file_watcher has read the
 * certificates, so the first connections may be reset.
 */
export async function callUntil(client: LineProcess, cmd: Record<string, unknown>, accept: (l: Line) => boolean, timeoutMs: number, what: string): Promise<Line & { result?: CallResult }> {
  const deadline = Date.now() + timeoutMs;
  let last: Line | undefined;
  while (Date.now() < deadline) {
    last = await client.request({ op: 'call', deadlineMs: 2000, ...cmd });
    if (accept(last)) return last as Line & { result?: CallResult };
    await sleep(50);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms; last answer ${JSON.stringify(last)}`);
}

export interface LoopStatus { calls: number; failures: number; servers: Record<string, number>; peerSerials: number; serverSerials: number }

/** Polls a running call loop in the client until `done` says it has gone far enough (counted calls, not time). */
export async function loopUntil(client: GrpcProcess, loop: string, done: (s: LoopStatus) => boolean, timeoutMs: number, what: string): Promise<LoopStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = (await client.request({ op: 'loop-status', loop })).result as LoopStatus;
    if (done(status)) return status;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; loop ${loop} at ${JSON.stringify(status)}`);
    await sleep(50);
  }
}

/**
 * Fails the test on any NACK meshd recorded, printing the client's message; also checks the HTTP
 * debug view agrees. `who` names the gRPC implementations connected, for the messages.
 */
export async function expectNoNacks(t: Test, mesh: ProxylessMesh, who = 'grpc-js-xds'): Promise<void> {
  const nacks = mesh.nacks();
  t.same(nacks, [], nacks.length === 0 ? `${who} NACKed nothing (meshd's view)` : `${who} NACKed: ${nacks.map((n) => `${n.proxy} ${n.type}: ${n.message}`).join(' | ')}`);
  const view = (await (await fetch(`http://127.0.0.1:${mesh.meshd.ports.monitoring}/debug/connections`)).json()) as Array<{ types: Array<{ lastNack?: { message: string } }> }>;
  const viewNacks = view.flatMap((c) => c.types.flatMap((ty) => (ty.lastNack ? [ty.lastNack.message] : [])));
  t.same(viewNacks, [], '/debug/connections shows no NACK');
}

/** The server process is alive and never printed a crash. */
export function expectAlive(t: Test, p: LineProcess): void {
  t.same(p.crashes(), [], `${p.name} did not crash`);
  t.equal(p.exited, undefined, `${p.name} is still running`);
}
