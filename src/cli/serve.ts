import { Command, InvalidArgumentError, Option } from 'commander';
import { formatDuration, parseDuration } from '../common/duration.js';
import {
  GRPC_ADDR, MAX_WORKLOAD_CERT_TTL_MS, MONITORING_ADDR, ROOT_CERT_TTL_MS, SECURE_GRPC_ADDR, SHUTDOWN_GRACE_MS, SVID_ROTATION, TELEMETRY_SERIES_IDLE_MS,
  WORKLOAD_CERT_TTL_MS,
} from '../common/defaults.js';
import { createLogger } from '../common/logger.js';
import { systemClock } from '../common/clock.js';
import { startMeshd } from '../server/meshd.js';
import { defaultMintWorkers } from '../ca/mint-pool.js';
import { DEFAULT_BUNDLE_ENDPOINT_PORT } from '../federation/bundle-endpoint.js';
import { absolute, dataDirOption, logLevelOption, storeKeyFileOption, storeOption, trustDomainOption } from './options.js';

/**
 * `meshd serve`: the control plane. Flag names follow pilot-discovery's where the concept
 * matches (--grpcAddr, --secureGRPCAddr, --monitoringAddr), in kebab case.
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the control plane: CA, SDS, xDS (ADS) and telemetry')
    .addOption(dataDirOption())
    .addOption(new Option('--ca-dir <dir>', "plug-in CA in Istio's cacerts layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) instead of the built-in root").env('MESHD_CA_DIR'))
    .addOption(new Option('--config-dir <dir>', 'directory of Istio YAML (PeerAuthentication, ServiceEntry, WorkloadEntry, mesh config), watched for changes').env('MESHD_CONFIG_DIR'))
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .addOption(trustDomainOption())
    .addOption(new Option('--secure-grpc-addr <host:port>', 'gRPC over TLS: ADS, SDS, per-type xDS, CSR API, access logs').default(SECURE_GRPC_ADDR))
    .addOption(new Option('--grpc-addr <host:port>', 'plaintext gRPC for local development (same credentials required)').default(GRPC_ADDR))
    .addOption(new Option('--allow-remote-plaintext', 'allow --grpc-addr on a non-loopback address').default(false))
    .addOption(new Option('--monitoring-addr <host:port>', 'HTTP: /metrics, /ready, /healthz, /trust-bundle, /debug/*').default(MONITORING_ADDR))
    .addOption(new Option('--root-key-type <type>', 'key type of a newly created built-in root').choices(['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096']).default('ec-p256'))
    .addOption(new Option('--root-ttl <duration>', 'lifetime of a newly created built-in root (Istio CITADEL_SELF_SIGNED_CA_CERT_TTL)').default(formatDuration(ROOT_CERT_TTL_MS)))
    .addOption(new Option('--workload-cert-ttl <duration>', 'SVID lifetime; given explicitly it overrides the mesh config (Istio DEFAULT_WORKLOAD_CERT_TTL)').default(formatDuration(WORKLOAD_CERT_TTL_MS)))
    .addOption(new Option('--max-workload-cert-ttl <duration>', 'longest SVID lifetime a caller may ask for; longer requests are rejected (Istio MAX_WORKLOAD_CERT_TTL)').default(formatDuration(MAX_WORKLOAD_CERT_TTL_MS)))
    .addOption(new Option('--rotation-fraction <f>', 'fraction of an SVID lifetime after which it is re-issued and pushed; given explicitly it overrides the mesh config').default(String(SVID_ROTATION.fraction)))
    .addOption(new Option('--ca-workers <n>', 'threads that mint workload SVIDs when the CA key is in this process (0: on the event loop; default one per core beyond the first, at most 4)')
      .env('MESHD_CA_WORKERS').default(defaultMintWorkers()).argParser(workerCount))
    .addOption(new Option('--federation-addr [host:port]', "serve meshd's trust bundle as a SPIFFE bundle endpoint for other trust domains (off unless given; given alone, 0.0.0.0:8443 as SPIRE's bundle endpoint)").preset(`0.0.0.0:${DEFAULT_BUNDLE_ENDPOINT_PORT}`))
    .addOption(new Option('--federation-profile <profile>', "how foreign trust domains authenticate the bundle endpoint: meshd's own SVID, or a Web PKI certificate from --federation-cert-file (default https_spiffe)").choices(['https_spiffe', 'https_web']))
    .addOption(new Option('--federation-cert-file <file>', 'https_web: the bundle endpoint certificate chain (PEM), re-read when it changes'))
    .addOption(new Option('--federation-key-file <file>', 'https_web: the bundle endpoint private key (PEM), re-read when it changes'))
    .addOption(new Option('--federation-web-ca-file <file>', 'PEM CAs trusted for https_web bundle endpoints of foreign trust domains, beside the system CAs'))
    .addOption(new Option('--telemetry-series-idle <duration>', 'istio_* series not updated for this long are dropped from /metrics, freeing their place under the series bound (0s: kept until restart)').default(formatDuration(TELEMETRY_SERIES_IDLE_MS)))
    .addOption(new Option('--shutdown-grace <duration>', 'on SIGTERM, how long streams get to close before the process exits').default(formatDuration(SHUTDOWN_GRACE_MS)))
    .addOption(logLevelOption())
    .action(async (opts: ServeFlags, cmd: Command) => {
      const logger = createLogger({ level: opts.logLevel });
      // An explicit flag overrides the mesh config; otherwise the mesh config (or its default) applies.
      const explicit = (name: string): boolean => cmd.getOptionValueSource(name) === 'cli' || cmd.getOptionValueSource(name) === 'env';
      const meshd = await startMeshd({
        dataDir: absolute(opts.dataDir),
        caDir: opts.caDir ? absolute(opts.caDir) : undefined,
        configDir: opts.configDir ? absolute(opts.configDir) : undefined,
        ...(opts.store ? { store: { url: opts.store, keyFile: opts.storeKeyFile ? absolute(opts.storeKeyFile) : undefined } } : {}),
        trustDomain: opts.trustDomain,
        trustDomainFromFlag: cmd.getOptionValueSource('trustDomain') === 'cli',
        secureGrpcAddr: opts.secureGrpcAddr,
        grpcAddr: opts.grpcAddr,
        allowRemotePlaintext: opts.allowRemotePlaintext,
        monitoringAddr: opts.monitoringAddr,
        rootKeyType: opts.rootKeyType,
        rootTtlMs: parseDuration(opts.rootTtl),
        workloadCertTtlMs: explicit('workloadCertTtl') ? parseDuration(opts.workloadCertTtl) : undefined,
        maxWorkloadCertTtlMs: parseDuration(opts.maxWorkloadCertTtl),
        rotationFraction: explicit('rotationFraction') ? Number(opts.rotationFraction) : undefined,
        caWorkers: opts.caWorkers,
        federation: {
          addr: opts.federationAddr,
          profile: opts.federationProfile,
          certFile: opts.federationCertFile ? absolute(opts.federationCertFile) : undefined,
          keyFile: opts.federationKeyFile ? absolute(opts.federationKeyFile) : undefined,
          webCaFile: opts.federationWebCaFile ? absolute(opts.federationWebCaFile) : undefined,
        },
        telemetrySeriesIdleMs: parseDuration(opts.telemetrySeriesIdle),
        logger,
        clock: systemClock,
      });
      // Last resort, for the serving process only. A rejected promise nobody handles belongs to
      // one request or one background task whose own error handling is missing; Node's default
      // would end the process, and with it the CA and every proxy's stream. It is logged and
      // counted (meshd_handler_errors_total{server="process"}) and meshd keeps serving. Uncaught
      // exceptions keep Node's default (exit): one leaves a synchronous step half done, so the
      // state it touched can no longer be trusted; the handlers guard against those themselves.
      process.on('unhandledRejection', (reason) => void meshd.errors.report('process', 'unhandledRejection', reason));
      const grace = parseDuration(opts.shutdownGrace);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal, graceMs: grace }, 'shutting down: no new streams; open streams end with UNAVAILABLE so proxies reconnect elsewhere');
        // Real time on purpose: the last resort if stopping hangs, whatever any clock says.
        const hard = setTimeout(() => { logger.error('shutdown grace exceeded; exiting'); process.exit(1); }, grace + 2000);
        hard.unref();
        meshd.stop(grace).then(() => process.exit(0), (err: unknown) => {
          logger.error({ err: (err as Error).message }, 'shutdown failed');
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}

interface ServeFlags {
  dataDir: string;
  caDir?: string;
  configDir?: string;
  store?: string;
  storeKeyFile?: string;
  trustDomain: string;
  secureGrpcAddr: string;
  grpcAddr: string;
  allowRemotePlaintext: boolean;
  monitoringAddr: string;
  rootKeyType: 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';
  rootTtl: string;
  workloadCertTtl: string;
  maxWorkloadCertTtl: string;
  rotationFraction: string;
  caWorkers: number;
  federationAddr?: string;
  federationProfile?: 'https_spiffe' | 'https_web';
  federationCertFile?: string;
  federationKeyFile?: string;
  federationWebCaFile?: string;
  telemetrySeriesIdle: string;
  shutdownGrace: string;
  logLevel: string;
}

function workerCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 64) throw new InvalidArgumentError('a whole number from 0 to 64');
  return n;
}
