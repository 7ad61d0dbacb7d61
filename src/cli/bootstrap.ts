import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileAtomic } from '../common/atomic-file.js';
import { systemClock } from '../common/clock.js';
import { MESHD_XDS_ADDRESS } from '../common/defaults.js';
import { generateBootstrap } from '../xds/bootstrap/generate-bootstrap.js';
import { PROMETHEUS_STATS_PORT } from '../xds/bootstrap/build-bootstrap.js';
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
 * The output holds the bearer token: --output writes it with mode 0600.
 */
export function registerBootstrap(program: Command): void {
  program
    .command('bootstrap')
    .description('print the Envoy bootstrap (YAML) for the sidecar of a WorkloadEntry: node identity, ADS to meshd over TLS, SDS over ADS, admin on 127.0.0.1')
    .option('--config-dir <dir>', 'mesh config dir (Istio YAML) holding the WorkloadEntry (or --store)')
    .requiredOption('-n, --namespace <ns>', 'namespace of the WorkloadEntry')
    .requiredOption('-w, --workload <name>', 'name of the WorkloadEntry')
    .option('--token-file <file>', 'bearer token (`meshd token issue`) sent as `authorization` on the ADS stream; read once, now')
    .addOption(new Option('--xds-address <host:port[,host:port...]>', "meshd's gRPC TLS address as the sidecar reaches it; several replicas: every address, comma-separated (or one DNS name with several addresses)").default(MESHD_XDS_ADDRESS))
    .option('--als-address <host:port>', 'where access logs go (default: the mesh config access log address, else --xds-address)')
    .addOption(new Option('--admin-port <port>', 'Envoy admin port on 127.0.0.1').default(15000).argParser(portArg))
    .addOption(new Option('--stats-port <port>', "Istio's prometheus_stats listener on 0.0.0.0: only /stats/prometheus, forwarded to admin (0: none)").default(PROMETHEUS_STATS_PORT).argParser(portOrZero))
    .option('--root-cert <file>', "meshd's trust bundle PEM, e.g. from its /trust-bundle endpoint (default: the CA's bundle)")
    .addOption(new Option('--ca-dir <dir>', "plug-in CA in Istio's cacerts layout: trust its root-cert.pem").env('MESHD_CA_DIR'))
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .option('-o, --output <file>', 'write to this file (mode 0600, atomically) instead of stdout')
    .action(async (opts: {
      namespace: string; workload: string; tokenFile?: string; xdsAddress: string;
      alsAddress?: string; adminPort: number; statsPort: number; rootCert?: string; caDir?: string; dataDir: string; output?: string;
      configDir?: string; store?: string; storeKeyFile?: string;
    }) => {
      if (opts.configDir && opts.store) throw new Error('--config-dir and --store are two sources of mesh config; give one');
      if (!opts.configDir && !opts.store) throw new Error('the WorkloadEntry comes from --config-dir DIR or --store URL; give one');
      const fromStore = opts.store ? await readFromStore({ store: opts.store, storeKeyFile: opts.storeKeyFile }, opts.rootCert === undefined && opts.caDir === undefined) : undefined;
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
        ...(opts.caDir !== undefined ? { caDir: absolute(opts.caDir) } : {}),
      }, systemClock.now());
      for (const w of generated.warnings) process.stderr.write(`meshd bootstrap: warning: ${w}\n`);
      if (opts.output !== undefined) {
        await writeFileAtomic(absolute(opts.output), generated.yaml, { mode: 0o600 });
        process.stderr.write(`wrote ${opts.output} for ${generated.bootstrap['node'] ? (generated.bootstrap['node'] as { id: string }).id : opts.workload}\n`);
      } else {
        process.stdout.write(generated.yaml);
      }
    });
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
