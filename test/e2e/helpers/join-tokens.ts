import type { Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { parseExposition, total } from '../../telemetry/helpers/exposition.js';
import { csrWithToken } from './csr-outcome.js';
import type { TestMeshd } from './meshd.js';
import { runMeshd } from './serve-process.js';

/** A join token as `meshd token issue` printed it: the token, the id on stderr, and its claims. */
export interface Issued { token: string; id: string; stderr: string; claims: Record<string, unknown> }

/** Runs the real `meshd token issue FLAGS --data-dir DIR`; the command must exit 0. */
export async function issueToken(t: Test, dataDir: string, flags: string[]): Promise<Issued> {
  const r = await runMeshd(['token', 'issue', ...flags, '--data-dir', dataDir]);
  t.equal(r.code, 0, `token issue ${flags.join(' ')}: exits 0 (${r.stderr.trim()})`);
  const token = r.stdout.trim();
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const id = /token id (\S+) for /.exec(r.stderr)?.[1] ?? '';
  return { token, id, stderr: r.stderr, claims };
}

/** A CSR for `spiffeId` sent with the token is refused with `code` and `details`, counted once under `reason` and `labels`, and nothing is minted. */
export async function expectRefused(
  t: Test, meshd: TestMeshd, spiffeId: string, token: string,
  refusal: { code: grpc.status; details: RegExp; reason: string; labels: Record<string, string> },
): Promise<void> {
  const { code, details, reason, labels } = refusal;
  const metrics = async (): Promise<ReturnType<typeof parseExposition>> => parseExposition(await meshd.metricsText());
  const before = await metrics();
  const issuedBefore = total(before, 'citadel_server_success_cert_issuance_count');
  const countedBefore = total(before, 'meshd_authentication_failures_total', { reason, ...labels });
  const got = await csrWithToken(meshd, token, spiffeId);
  if (typeof got === 'string') {
    t.fail(`issued ${got} instead of refusing (${reason})`);
    return;
  }
  t.equal(grpc.status[got.code], grpc.status[code], `${reason}: ${grpc.status[code]}`);
  t.match(got.details, details, `${reason}: ${got.details}`);
  const after = await metrics();
  t.equal(total(after, 'citadel_server_success_cert_issuance_count'), issuedBefore, `${reason}: nothing minted`);
  t.equal(total(after, 'meshd_authentication_failures_total', { reason, ...labels }), countedBefore + 1, `${reason}: counted once`);
}
