import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileAtomic } from '../common/atomic-file.js';
import { loadConfigDir } from '../config/index.js';
import { findWorkloadEntry } from '../mesh/registry.js';
import { DEFAULT_DNS_DOMAIN, formatNodeId, sidecarNodeId } from '../mesh/node-identity.js';
import { localityOf } from '../xds/bootstrap/sidecar-node.js';
import { buildGrpcBootstrap, defaultXdsSocket, xdsServerUri, type GrpcBootstrapInput } from '../agent/grpc-bootstrap.js';
import { serviceAccountOf } from '../mesh/spiffe-identity.js';
import { absolute } from './options.js';

/**
 * `meshd grpc-bootstrap`: the bootstrap a proxyless gRPC workload reads from GRPC_XDS_BOOTSTRAP
 * (what istio-agent writes to /etc/istio/proxy/grpc-bootstrap.json). It names no secret: the
 * xDS server is `meshd agent`'s local socket, the certificates are the agent's files.
 */
export function registerGrpcBootstrap(program: Command): void {
  program
    .command('grpc-bootstrap')
    .description('write the gRPC xDS bootstrap (JSON) for a proxyless gRPC workload served through `meshd agent`')
    .requiredOption('-n, --namespace <ns>', 'namespace of the WorkloadEntry')
    .requiredOption('-w, --workload <name>', 'name of the WorkloadEntry')
    .requiredOption('--certs <dir>', "the agent's --out directory (cert-chain.pem, key.pem, root-cert.pem)")
    .option('--xds-address <address>', "the agent's xDS socket (unix:///path or a path) or a host:port; default unix://<certs>/xds.sock")
    .option('--config-dir <dir>', 'mesh config dir: checks the WorkloadEntry exists and takes its address, service account, labels and locality')
    .addOption(new Option('--refresh-interval <seconds>', 'how often gRPC re-reads the certificate files').default(10).argParser(seconds))
    .option('-o, --output <file>', 'write to this file (atomically) instead of stdout')
    .action(async (opts: { namespace: string; workload: string; certs: string; xdsAddress?: string; configDir?: string; refreshInterval: number; output?: string }) => {
      const certs = absolute(opts.certs);
      let nodeId = formatNodeId({ type: 'sidecar', ip: '0.0.0.0', name: opts.workload, namespace: opts.namespace, dnsDomain: DEFAULT_DNS_DOMAIN });
      const extra: Partial<GrpcBootstrapInput> = {};
      if (opts.configDir !== undefined) {
        const snapshot = await loadConfigDir(absolute(opts.configDir));
        const workload = findWorkloadEntry(snapshot, opts.namespace, opts.workload);
        if (workload === undefined) throw new Error(`no WorkloadEntry ${opts.namespace}/${opts.workload} in ${opts.configDir}`);
        nodeId = sidecarNodeId(workload);
        extra.serviceAccount = serviceAccountOf(workload.spec.serviceAccount);
        extra.trustDomain = snapshot.mesh.trustDomain;
        extra.labels = workload.spec.labels;
        if (workload.spec.address !== '') extra.instanceIp = workload.spec.address;
        const locality = localityOf(workload.spec.locality);
        if (locality !== undefined) extra.locality = locality;
      }
      const bootstrap = buildGrpcBootstrap({
        ...extra,
        xdsServerUri: xdsServerUri(opts.xdsAddress === undefined ? defaultXdsSocket(certs) : absoluteIfPath(opts.xdsAddress)),
        nodeId,
        namespace: opts.namespace,
        workload: opts.workload,
        certDir: certs,
        refreshIntervalSeconds: opts.refreshInterval,
      });
      const text = `${JSON.stringify(bootstrap, null, 2)}\n`;
      if (opts.output !== undefined) {
        await writeFileAtomic(absolute(opts.output), text, { mode: 0o644 });
        process.stderr.write(`wrote ${opts.output}; run the workload with GRPC_XDS_BOOTSTRAP=${absolute(opts.output)}\n`);
      } else {
        process.stdout.write(text);
      }
    });
}

function seconds(value: string): number {
  const n = Number(value.replace(/s$/, ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of seconds ≥ 1');
  return n;
}

function absoluteIfPath(address: string): string {
  return address.startsWith('/') || address.startsWith('.') ? absolute(address) : address;
}
