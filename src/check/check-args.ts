import type { MeshSnapshot, WorkloadEntry } from '../config/model.js';
import type { CheckClient } from './simulate-connection.js';

/**
 * `meshd check` arguments: `--from outside|<ns>/<workload>` and `--to <ns>/<workload>:<port>`,
 * workloads named by their WorkloadEntry. Errors say what was expected and what exists.
 */
export class CheckArgumentError extends Error {}

function findWorkload(snapshot: MeshSnapshot, ref: string, flag: string): WorkloadEntry {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1 || ref.indexOf('/', slash + 1) !== -1) {
    throw new CheckArgumentError(`${flag} "${ref}": expected <namespace>/<workload> (a WorkloadEntry)`);
  }
  const namespace = ref.slice(0, slash);
  const name = ref.slice(slash + 1);
  const w = snapshot.workloadEntries.find((x) => x.meta.namespace === namespace && x.meta.name === name);
  if (w === undefined) {
    const known = snapshot.workloadEntries.map((x) => `${x.meta.namespace}/${x.meta.name}`).sort();
    throw new CheckArgumentError(
      `${flag} "${ref}": no WorkloadEntry ${namespace}/${name} in the config` + (known.length > 0 ? ` (known: ${known.join(', ')})` : ' (it has no WorkloadEntries)'),
    );
  }
  return w;
}

export function parseFrom(snapshot: MeshSnapshot, from: string): CheckClient {
  if (from === 'outside') return { kind: 'outside' };
  return { kind: 'workload', workload: findWorkload(snapshot, from, '--from') };
}

export function parseTo(snapshot: MeshSnapshot, to: string): { workload: WorkloadEntry; port: number } {
  const colon = to.lastIndexOf(':');
  if (colon <= 0) throw new CheckArgumentError(`--to "${to}": expected <namespace>/<workload>:<port>`);
  const portText = to.slice(colon + 1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new CheckArgumentError(`--to "${to}": port must be in range 1..65535`);
  }
  return { workload: findWorkload(snapshot, to.slice(0, colon), '--to'), port };
}
