import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { stringify } from 'yaml';
import { countLevels, loadConfigDir } from '../../config/index.js';
import { findWorkloadEntry } from '../../mesh/registry.js';
import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import { controlPlaneSpiffeId, workloadSpiffeId } from '../../mesh/spiffe-identity.js';
import { decodeStrict, formatStrictErrors } from '../../envoy/strict-decode.js';
import { checkBootstrapToken } from './bootstrap-token.js';
import { BOOTSTRAP_TYPE, buildBootstrap, PROMETHEUS_STATS_PORT, type JsonBootstrap } from './build-bootstrap.js';
import { parseEndpointAddresses } from './endpoint-address.js';
import { buildAgentBootstrap } from './build-agent-bootstrap.js';
import { normaliseBundle, readTrustBundlePem } from './trust-bundle-source.js';

/**
 * `meshd bootstrap` without the CLI: reads the config dir, the trust bundle and the token, builds
 * the bootstrap, and proves it decodes strictly as envoy.config.bootstrap.v3.Bootstrap before
 * anything is printed (a bootstrap Envoy would reject is a bug here, never the user's problem).
 * With `agent` it reads only the config dir: the agent brings the credential and the roots.
 */
export interface GenerateBootstrapOptions {
  configDir: string;
  /** The mesh config from the shared store instead of configDir (which then only names it in messages). */
  snapshot?: MeshSnapshot;
  /** The trust bundle already read (from the shared store), instead of the data dir's CA. */
  rootsPem?: string;
  namespace: string;
  workload: string;
  dataDir: string;
  xdsAddress: string;
  /** Default: meshConfig accessLogService address, else xdsAddress. */
  alsAddress?: string;
  adminPort: number;
  /** Prometheus stats listener port (default 15090, as Istio); 0: none. */
  statsPort?: number;
  tokenFile?: string;
  rootCertFile?: string;
  /** A plug-in CA (Istio cacerts layout): its root-cert.pem is the bundle. */
  caDir?: string;
  /** Behind `meshd agent`: ADS and SDS over its sockets (absolute paths); no token, no roots read. */
  agent?: { xdsSocket: string; sdsSocket: string };
}

export interface GeneratedBootstrap {
  bootstrap: JsonBootstrap;
  yaml: string;
  /** For stderr: the output is usable, but the user should know. */
  warnings: string[];
  workload: WorkloadEntry;
}

export async function generateBootstrap(opts: GenerateBootstrapOptions, nowMs: number): Promise<GeneratedBootstrap> {
  if (opts.agent !== undefined) refuseDirectOnlyOptions(opts);
  const warnings: string[] = [];
  const snapshot = opts.snapshot ?? (await loadConfigDir(opts.configDir));
  const workload = pickWorkload(snapshot, opts);
  const { errors } = countLevels(snapshot.messages);
  if (errors > 0) warnings.push(`${opts.configDir} has ${errors} config error(s); run \`meshd validate ${opts.configDir}\``);
  if (workload.spec.serviceAccount === '') {
    throw new Error(`WorkloadEntry ${opts.namespace}/${opts.workload} has no serviceAccount: a sidecar needs one, it is its SPIFFE identity (${workloadSpiffeId(snapshot.mesh.trustDomain, opts.namespace, '<serviceAccount>')})`);
  }

  const xds = parseEndpointAddresses(opts.xdsAddress, '--xds-address');
  const alsText = opts.alsAddress ?? snapshot.mesh.accessLogService?.address ?? opts.xdsAddress;
  const als = parseEndpointAddresses(alsText, opts.alsAddress !== undefined ? '--als-address' : 'meshConfig access log address');
  if (opts.agent !== undefined) {
    const bootstrap = buildAgentBootstrap({
      workload,
      mesh: snapshot.mesh,
      xdsSocket: checkSocketPath(opts.agent.xdsSocket, '--xds-socket'),
      sdsSocket: checkSocketPath(opts.agent.sdsSocket, '--sds-socket'),
      als,
      controlPlaneSpiffeId: controlPlaneSpiffeId(snapshot.mesh.trustDomain),
      adminPort: opts.adminPort,
      statsPort: opts.statsPort ?? PROMETHEUS_STATS_PORT,
    });
    return { bootstrap: checked(bootstrap), yaml: toYaml(bootstrap), warnings, workload };
  }
  const rootsPem = opts.rootsPem !== undefined ? normaliseBundle(opts.rootsPem, 'the trust bundle in the store', nowMs) : await readTrustBundlePem({
    dataDir: opts.dataDir,
    trustDomain: snapshot.mesh.trustDomain,
    ...(opts.rootCertFile !== undefined ? { rootCertFile: opts.rootCertFile } : {}),
    ...(opts.caDir !== undefined ? { caDir: opts.caDir } : {}),
  }, nowMs);

  let token: string | undefined;
  if (opts.tokenFile !== undefined) {
    let raw: string;
    try {
      raw = await readFile(opts.tokenFile, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --token-file ${opts.tokenFile}: ${(err as Error).message}`);
    }
    const checked = checkBootstrapToken(raw, { namespace: opts.namespace, serviceAccount: workload.spec.serviceAccount }, nowMs, `--token-file ${opts.tokenFile}`);
    token = checked.token;
    warnings.push(...checked.warnings);
  } else {
    warnings.push(`no --token-file: Envoy sends no credential and meshd will refuse its ADS stream (mint one: meshd token issue -n ${opts.namespace} -s ${workload.spec.serviceAccount})`);
  }

  const bootstrap = buildBootstrap({
    workload,
    mesh: snapshot.mesh,
    xds,
    als,
    rootsPem,
    controlPlaneSpiffeId: controlPlaneSpiffeId(snapshot.mesh.trustDomain),
    adminPort: opts.adminPort,
    statsPort: opts.statsPort ?? PROMETHEUS_STATS_PORT,
    ...(token !== undefined ? { token } : {}),
  });
  return { bootstrap: checked(bootstrap), yaml: toYaml(bootstrap), warnings, workload };
}

function checked(bootstrap: JsonBootstrap): JsonBootstrap {
  const check = decodeStrict(BOOTSTRAP_TYPE, bootstrap);
  if (!check.valid) throw new Error(`internal error: the generated bootstrap would be rejected by Envoy. ${formatStrictErrors(BOOTSTRAP_TYPE, check)}`);
  return bootstrap;
}

/** Behind the agent, Envoy holds no credential and trusts the roots the agent serves. */
function refuseDirectOnlyOptions(opts: GenerateBootstrapOptions): void {
  if (opts.tokenFile !== undefined) {
    throw new Error('--token-file does not go with --agent: the agent holds the credential (`meshd agent --token-file`), and Envoy\'s bootstrap carries none');
  }
  const roots = opts.rootCertFile !== undefined ? '--root-cert' : opts.caDir !== undefined ? '--ca-dir' : undefined;
  if (roots !== undefined) {
    throw new Error(`${roots} does not go with --agent: Envoy trusts the roots the agent serves as ROOTCA (give the file to \`meshd agent --ca-root\`)`);
  }
}

/**
 * Envoy dials a pipe by the path as written, from its own working directory, and a Unix socket
 * address holds at most 107 bytes of path (sun_path is 108 with the NUL): refuse what Envoy could
 * only fail on at run time.
 */
function checkSocketPath(path: string, flag: string): string {
  if (!isAbsolute(path)) throw new Error(`${flag} ${JSON.stringify(path)} must be an absolute path: Envoy resolves a relative one against its own working directory`);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) throw new Error(`${flag} ${JSON.stringify(path)} is ${bytes} bytes; a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`);
  return path;
}

const MAX_SOCKET_PATH_BYTES = 107;

function pickWorkload(snapshot: MeshSnapshot, opts: GenerateBootstrapOptions): WorkloadEntry {
  const found = findWorkloadEntry(snapshot, opts.namespace, opts.workload);
  if (found) return found;
  const inNamespace = snapshot.workloadEntries.filter((w) => w.meta.namespace === opts.namespace).map((w) => w.meta.name).sort();
  const known = inNamespace.length > 0 ? `WorkloadEntries in ${opts.namespace}: ${inNamespace.join(', ')}` : `no WorkloadEntry is in namespace ${opts.namespace}`;
  throw new Error(`no WorkloadEntry ${opts.namespace}/${opts.workload} in ${opts.configDir} (${known})`);
}

/** YAML as Envoy reads it; PEM stays a literal block so the file is readable and diffable. */
export function toYaml(bootstrap: JsonBootstrap): string {
  return stringify(bootstrap, { lineWidth: 0, blockQuote: 'literal', aliasDuplicateObjects: false });
}
