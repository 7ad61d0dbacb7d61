import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileAtomic } from '../common/atomic-file.js';
import { systemClock } from '../common/clock.js';
import { MESHD_XDS_ADDRESS } from '../common/defaults.js';
import { generateBootstrap } from '../xds/bootstrap/generate-bootstrap.js';
import { PROMETHEUS_STATS_PORT } from '../xds/bootstrap/build-bootstrap.js';
import { defaultXdsSocket } from '../agent/grpc-bootstrap.js';
import { AGENT_SDS_SOCKET_FILE, defaultSdsSocket } from '../xds/bootstrap/agent-sockets.js';
import { absolute, dataDirOption, storeKeyFileOption, storeOption } from './options.js';
import { withCliStore, type StoreCliFlags } from './store-access.js';
import { buildSnapshot } from '../config/build-snapshot.js';
import type { MeshSnapshot } from '../config/model.js';
import { parseJournal } from '../ca/journal.js';
import { bundleRoots } from '../ca/rotation.js';

function portArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number 1-65535');
  return n;
}

function portOrZero(value: string): number {
  return value === '0' ? 0 : portArg(value);
}

/**
 * `meshd bootstrap`: the Envoy bootstrap for the sidecar of one WorkloadEntry (what
 * `istioctl x workload entry configure` and istio-agent produce for a VM, in one file).
 * Direct, it holds the bearer token: --output writes it with mode 0600. With --agent, Envoy talks
 * only to `meshd agent`'s sockets (xDS proxy and SDS), as Envoy talks to istio-agent.
 */
export function registerBootstrap(program: Command): void {
  program
    .command('bootstrap')
    .description("print the Envoy bootstrap (YAML) for the sidecar of a WorkloadEntry: node identity, ADS and SDS through `meshd agent`'s sockets (--agent) or straight to meshd over TLS with a token, admin on 127.0.0.1")
    .option('--config-dir <dir>', 'mesh config dir (Istio YAML) holding the WorkloadEntry (or --store)')
    .requiredOption('-n, --namespace <ns>', 'namespace of the WorkloadEntry')
    .requiredOption('-w, --workload <name>', 'name of the WorkloadEntry')
    .option('--agent', "Envoy behind `meshd agent` (recommended): ADS through the agent's xDS proxy, certificates from the agent's SDS socket; no token, key or roots in the file")
    .option('--certs <dir>', "with --agent: the agent's --out directory, where its sockets are by default")
    .option('--xds-socket <path>', "with --agent: the agent's xDS proxy socket (default: <certs>/xds.sock, the agent's default)")
    .option('--sds-socket <path>', `with --agent: the agent's SDS socket, as given to \`meshd agent --sds-socket\` (default: <certs>/${AGENT_SDS_SOCKET_FILE})`)
    .option('--token-file <file>', 'without --agent: bearer token (`meshd token issue`) sent as `authorization` on the ADS stream; read once, now, and Envoy cannot reconnect once it expires')
    .addOption(new Option('--xds-address <host:port[,host:port...]>', "meshd's gRPC TLS address as the sidecar reaches it; several replicas: every address, comma-separated (or one DNS name with several addresses)").default(MESHD_XDS_ADDRESS))
    .option('--als-address <host:port>', 'where access logs go (default: the mesh config access log address, else --xds-address)')
    .addOption(new Option('--admin-port <port>', 'Envoy admin port on 127.0.0.1').default(15000).argParser(portArg))
    .addOption(new Option('--stats-port <port>', "Istio's prometheus_stats listener on 0.0.0.0: only /stats/prometheus, forwarded to admin (0: none)").default(PROMETHEUS_STATS_PORT).argParser(portOrZero))
    .option('--root-cert <file>', "without --agent: meshd's trust bundle PEM, e.g. from its /trust-bundle endpoint (default: the CA's bundle)")
    .addOption(new Option('--ca-dir <dir>', "plug-in CA in Istio's cacerts layout: trust its root-cert.pem").env('MESHD_CA_DIR'))
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .option('-o, --output <file>', 'write to this file (mode 0600, atomically) instead of stdout')
    .action(async (opts: {
      namespace: string; workload: string; tokenFile?: string; xdsAddress: string;
      alsAddress?: string; adminPort: number; statsPort: number; rootCert?: string; caDir?: string; dataDir: string; output?: string;
      agent?: boolean; certs?: string; xdsSocket?: string; sdsSocket?: string;
      configDir?: string; store?: string; storeKeyFile?: string;
    }, command: Command) => {
      const agent = opts.agent === true ? agentSockets(opts) : undefined;
      if (agent === undefined && (opts.certs ?? opts.xdsSocket ?? opts.sdsSocket) !== undefined) {
        throw new InvalidArgumentError('--certs, --xds-socket and --sds-socket go with --agent');
      }
      if (opts.configDir && opts.store) throw new Error('--config-dir and --store are two sources of mesh config; give one');
      if (!opts.configDir && !opts.store) throw new Error('the WorkloadEntry comes from --config-dir DIR or --store URL; give one');
      // Behind an agent Envoy's file holds no roots, so the store's bundle is not needed.
      const wantBundle = agent === undefined && opts.rootCert === undefined && opts.caDir === undefined;
      const fromStore = opts.store ? await readFromStore({ store: opts.store, storeKeyFile: opts.storeKeyFile }, wantBundle) : undefined;
      const generated = await generateBootstrap({
        configDir: opts.configDir ? absolute(opts.configDir) : 'the mesh config in the store',
        ...(fromStore ? { snapshot: fromStore.snapshot } : {}),
        ...(fromStore?.rootsPem !== undefined ? { rootsPem: fromStore.rootsPem } : {}),
        namespace: opts.namespace,
        workload: opts.workload,
        dataDir: absolute(opts.dataDir),
        xdsAddress: opts.xdsAddress,
        adminPort: opts.adminPort,
        statsPort: opts.statsPort,
        ...(opts.alsAddress !== undefined ? { alsAddress: opts.alsAddress } : {}),
        ...(opts.tokenFile !== undefined ? { tokenFile: absolute(opts.tokenFile) } : {}),
        ...(opts.rootCert !== undefined ? { rootCertFile: absolute(opts.rootCert) } : {}),
        // MESHD_CA_DIR in the environment (set for `meshd serve`) is not a --ca-dir given to --agent.
        ...(opts.caDir !== undefined && !(agent !== undefined && command.getOptionValueSource('caDir') === 'env') ? { caDir: absolute(opts.caDir) } : {}),
        ...(agent !== undefined ? { agent } : {}),
      }, systemClock.now());
      for (const w of generated.warnings) process.stderr.write(`meshd bootstrap: warning: ${w}\n`);
      if (opts.output !== undefined) {
        // 0600 either way: a direct bootstrap holds the token; an agent one is harmless, but
        // Envoy reads it as the same user, so nothing needs more.
        await writeFileAtomic(absolute(opts.output), generated.yaml, { mode: 0o600 });
        process.stderr.write(`wrote ${opts.output} for ${generated.bootstrap['node'] ? (generated.bootstrap['node'] as { id: string }).id : opts.workload}\n`);
      } else {
        process.stdout.write(generated.yaml);
      }
    });
}

/** The agent's sockets: given, or where `meshd agent --out <certs>` puts them. */
function agentSockets(opts: { certs?: string; xdsSocket?: string; sdsSocket?: string }): { xdsSocket: string; sdsSocket: string } {
  const certs = opts.certs !== undefined ? absolute(opts.certs) : undefined;
  const pick = (given: string | undefined, flag: string, byDefault: (dir: string) => string): string => {
    if (given !== undefined) return absolute(given);
    if (certs === undefined) throw new InvalidArgumentError(`--agent needs --certs <the agent's --out dir> or ${flag}`);
    return byDefault(certs);
  };
  return {
    xdsSocket: pick(opts.xdsSocket, '--xds-socket', defaultXdsSocket),
    sdsSocket: pick(opts.sdsSocket, '--sds-socket', defaultSdsSocket),
  };
}

/**
 * The mesh config and the trust bundle from the shared store. Only reads: a store that has no
 * CA yet is an error (a replica creates it), never a new root.
 */
async function readFromStore(flags: StoreCliFlags & { store: string }, wantBundle: boolean): Promise<{ snapshot: MeshSnapshot; rootsPem?: string }> {
  return withCliStore(flags, async (store) => {
    const set = await store.config.current();
    const snapshot = buildSnapshot((set?.documents ?? []).map((d) => ({ path: d.name, text: d.text })));
    if (!wantBundle) return { snapshot };
    const state = await store.ca.read();
    if (!state.journal) throw new Error("cannot read meshd's trust bundle: the store holds no CA yet; start `meshd serve --store` once to create it, or pass --root-cert (meshd's /trust-bundle)");
    const inBundle = new Set(bundleRoots(parseJournal(state.journal.text).roots, systemClock.now()).map((r) => r.id));
    return { snapshot, rootsPem: state.roots.filter((r) => inBundle.has(r.id)).map((r) => r.certPem).join('') };
  });
}
