import { Command, InvalidArgumentError, Option } from 'commander';
import { formatDuration, parseDuration } from '../common/duration.js';
import { AGENT_ROTATION, MESHD_XDS_ADDRESS, WORKLOAD_CERT_TTL_MS } from '../common/defaults.js';
import { createLogger } from '../common/logger.js';
import { systemClock } from '../common/clock.js';
import { validateRotationPolicy } from '../common/renewal-policy.js';
import { defaultXdsSocket } from '../agent/grpc-bootstrap.js';
import { defaultSdsSocket } from '../xds/bootstrap/agent-sockets.js';
import { startAgent } from '../agent/run-agent.js';
import { absolute, logLevelOption, trustDomainOption } from './options.js';

/**
 * `meshd agent`: runs beside a workload (istio-agent's role for proxyless gRPC, SPIRE agent's
 * for SVIDs): keeps its key and certificate in --out, proxies its xDS to meshd, optionally
 * serves SDS to a local Envoy.
 */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description("keep a workload's X.509-SVID in a directory (key made locally, signed through meshd's CSR API), renew it, and proxy its xDS to meshd")
    .requiredOption('-n, --namespace <ns>', "the workload's namespace")
    .requiredOption('-s, --service-account <sa>', "the workload's service account")
    .requiredOption('--token-file <file>', 'join token (`meshd token issue`), presented only while the agent holds no valid SVID (first start, or after its SVID expired); read again whenever needed, so a rotated file keeps working')
    .requiredOption('--out <dir>', 'where cert-chain.pem, key.pem (0600) and root-cert.pem are kept (swapped as a set through ..data)')
    .addOption(new Option('--xds-address <host:port[,host:port...]>', "meshd's gRPC TLS address (CSR API and xDS); several replicas: every address, comma-separated (IPs), or one DNS name with several addresses").default(MESHD_XDS_ADDRESS))
    .option('--ca-root <file>', "PEM roots that may sign meshd's serving certificate (GET /trust-bundle?format=pem on meshd's monitoring port); optional once --out holds a root-cert.pem this agent received")
    .addOption(trustDomainOption())
    .addOption(new Option('--key-type <type>', 'workload key type').choices(['ec-p256', 'rsa-2048']).default('ec-p256'))
    .addOption(new Option('--ttl <duration>', 'certificate lifetime asked for (Istio SECRET_TTL)').default(formatDuration(WORKLOAD_CERT_TTL_MS)))
    .addOption(new Option('--rotation-fraction <f>', `renew once this fraction of the lifetime has passed, ±${AGENT_ROTATION.jitter * 100} % jitter (istio-agent renews at half-life: SECRET_GRACE_PERIOD_RATIO 0.5)`).default(String(AGENT_ROTATION.fraction)))
    .option('--xds-socket <path>', 'Unix socket of the local xDS proxy for proxyless gRPC (default: <out>/xds.sock)')
    .option('--no-xds-proxy', 'do not run the local xDS proxy')
    .option('--sds-socket <path>', 'Unix socket where the agent serves SDS (default, ROOTCA, own SPIFFE ID, trust domain) to a local Envoy, as istio-agent does (default: <out>/sds.sock, where `meshd bootstrap --agent` points Envoy)')
    .option('--no-sds', 'do not serve SDS (proxyless gRPC workloads read the files in --out)')
    .option('--status-address <host:port>', "serve /healthz/ready (200 while the agent holds a valid SVID, 503 with the reason otherwise) and /metrics on this address, as pilot-agent does on 15020 (default: off)")
    .addOption(logLevelOption())
    .action(async (opts: AgentFlags) => {
      const logger = createLogger({ level: opts.logLevel });
      const fraction = Number(opts.rotationFraction);
      const rotation = { fraction, jitter: AGENT_ROTATION.jitter };
      const problem = validateRotationPolicy(rotation);
      if (problem) throw new InvalidArgumentError(`--rotation-fraction: ${problem}`);
      const out = absolute(opts.out);
      const running = await startAgent({
        namespace: opts.namespace,
        serviceAccount: opts.serviceAccount,
        trustDomain: opts.trustDomain,
        tokenFile: absolute(opts.tokenFile),
        outDir: out,
        meshdAddress: opts.xdsAddress,
        ...(opts.caRoot !== undefined ? { caRootFile: absolute(opts.caRoot) } : {}),
        keyType: opts.keyType,
        ttlMs: parseDuration(opts.ttl),
        rotation,
        ...(opts.xdsProxy ? { xdsSocket: absolute(opts.xdsSocket ?? defaultXdsSocket(out)) } : {}),
        ...(opts.sds ? { sdsSocket: absolute(opts.sdsSocket ?? defaultSdsSocket(out)) } : {}),
        ...(opts.statusAddress !== undefined ? { statusAddress: opts.statusAddress } : {}),
        logger,
        clock: systemClock,
      });
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'meshd agent shutting down; the certificate files stay in place');
        // Real time on purpose: the last resort if stopping hangs, whatever any clock says.
        const hard = setTimeout(() => process.exit(1), 5000);
        hard.unref();
        running.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}

interface AgentFlags {
  namespace: string;
  serviceAccount: string;
  tokenFile: string;
  out: string;
  xdsAddress: string;
  caRoot?: string;
  trustDomain: string;
  keyType: 'ec-p256' | 'rsa-2048';
  ttl: string;
  rotationFraction: string;
  xdsSocket?: string;
  xdsProxy: boolean;
  sdsSocket?: string;
  sds: boolean;
  statusAddress?: string;
  logLevel: string;
}
