import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { X509Certificate } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import { SHUTDOWN_GRACE_MS, SVID_ROTATION } from '../common/defaults.js';
import { openCertificateAuthority, type ManagedCertificateAuthority } from '../ca/index.js';
import { defaultMintWorkers } from '../ca/mint-pool.js';
import { splitPemCertificates } from '../ca/pem.js';
import type { RootKeyType } from '../ca/types.js';
import type { TokenAuthority } from '../auth/token-authority.js';
import { MeshAuthenticator } from '../auth/authenticator.js';
import { DataDirTokenLedger, type TokenLedger } from '../auth/token-ledger.js';
import { StoreTokenLedger } from '../store/token-ledger.js';
import { workloadEntryAccount } from '../auth/workload-binding.js';
import { authenticationFailures } from '../auth/metrics.js';
import { DiscoveryCore } from '../xds/core/index.js';
import { addDiscoveryServices } from '../xds/services/add-discovery-services.js';
import { addCsrService } from '../csr/csr-service.js';
import { TypeUrl } from '../envoy/type-urls.js';
import { SvidCache, svidKey } from '../svid/svid-cache.js';
import { SecretGenerator } from '../svid/secret-generator.js';
import { WorkloadCertExpiry, connectedSvids } from '../svid/workload-cert-expiry.js';
import { caSvidSource, NO_FOREIGN_BUNDLES } from '../svid/svid-source.js';
import { validateRotationPolicy, type RotationPolicy } from '../common/renewal-policy.js';
import { RotatingServerCredentials } from './rotating-credentials.js';
import { shutdownGrpcServer } from '../common/grpc-shutdown.js';
import { hostname } from 'node:os';
import { ReplicaPresence } from './replica-presence.js';
import { ServingIdentity, DEFAULT_SERVING_DNS_NAMES } from '../svid/serving-identity.js';
import { controlPlaneSpiffeId } from '../mesh/spiffe-identity.js';
import { startHttpServer, type HttpServerHandle } from './http-server.js';
import { monitoringRoutes } from './monitoring-routes.js';
import { grpcBindAddress, isLoopback, parseHostPort } from './addresses.js';
import { MeshState } from './mesh-state.js';
import { envoyRoot } from '../envoy/protos.js';
import { AccessLogIngester, addAccessLogService, meshWorkloadResolver } from '../telemetry/index.js';
import { GRPC_SERVER_OPTIONS } from './grpc-server-options.js';
import { HandlerErrors } from '../common/handler-errors.js';
import { checkFederationOptions, startFederation, type FederationOptions } from './federation.js';
import type { ForeignBundleSet } from '../federation/index.js';
import { foreignBundlePush } from '../xds/push-plan/foreign-bundles.js';
import { openStateSource, type StateSource, type StoreFlags } from './state-source.js';
import type { PostgresStore } from '../store/postgres/postgres-store.js';

/** Istio's source_cluster / destination_cluster when no node names one (a single-cluster mesh). */
const TELEMETRY_CLUSTER = 'Kubernetes';

export interface MeshdOptions {
  dataDir: string;
  caDir?: string;
  configDir?: string;
  /** The shared store (`--store`): CA roots, token key and mesh config come from it instead of the data dir and --config-dir. */
  store?: StoreFlags;
  trustDomain: string;
  /** The trust domain came from a flag (it must then agree with the mesh config). */
  trustDomainFromFlag?: boolean;
  secureGrpcAddr: string;
  grpcAddr: string;
  allowRemotePlaintext?: boolean;
  monitoringAddr: string;
  rootKeyType?: RootKeyType;
  rootTtlMs?: number;
  /** Overrides the mesh config's certificate TTL (a flag given explicitly). */
  workloadCertTtlMs?: number;
  maxWorkloadCertTtlMs?: number;
  /** Overrides the mesh config's rotation fraction (a flag given explicitly). */
  rotationFraction?: number;
  logger: Logger;
  clock: Clock;
  /** Tests: how often SVID due times are checked (default 1 s). */
  svidTickMs?: number;
  /** Threads that mint workload SVIDs (default: one per core beyond the first, at most 4; 0: on the event loop). */
  caWorkers?: number;
  /** The SPIFFE bundle endpoint (off without `addr`) and foreign bundle fetching. */
  federation?: FederationOptions;
  /** istio_* series not updated for this long are dropped (default 10 minutes; 0 keeps them). */
  telemetrySeriesIdleMs?: number;
  /** Join-token use records and revocations (default: files under the data dir). */
  tokenLedger?: TokenLedger;
}

export interface RunningMeshd {
  ports: { secureGrpc: number; grpc: number; monitoring: number; federation?: number };
  ca: ManagedCertificateAuthority;
  core: DiscoveryCore;
  tokens: TokenAuthority;
  /** Every proxy's SVID state, per (proven identity, node id). */
  svids: SvidCache;
  registry: Registry;
  /** Unexpected handler errors, counted in meshd_handler_errors_total (the serve command reports stray rejections here too). */
  errors: HandlerErrors;
  /** The foreign trust domains' bundles meshd trusts (ClusterFederatedTrustDomain). */
  foreignBundles: ForeignBundleSet;
  /** The shared store, with `store` in the options. */
  store: PostgresStore | undefined;
  /** Graceful stop: refuse new streams, end open ones with UNAVAILABLE, wait up to graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The composition root: wires CA, auth, config, discovery core, generators, gRPC and HTTP.
 * Start-up order makes /ready truthful: CA material first (refuse to start on bad
 * material), then config, then the servers; ready only when all of them are up.
 */
export async function startMeshd(options: MeshdOptions): Promise<RunningMeshd> {
  const { logger, clock } = options;
  const secure = parseHostPort(options.secureGrpcAddr, '--secure-grpc-addr');
  const plain = parseHostPort(options.grpcAddr, '--grpc-addr');
  const monitoring = parseHostPort(options.monitoringAddr, '--monitoring-addr');
  if (!isLoopback(plain.host) && !options.allowRemotePlaintext) {
    throw new Error(`--grpc-addr ${options.grpcAddr} is not a loopback address; plaintext gRPC beyond this host needs --allow-remote-plaintext`);
  }
  checkFederationOptions(options.federation);

  // Parse Envoy's protos before serving: lazily, the first xDS request pays for it while every stream waits.
  envoyRoot();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // One count of unexpected handler errors for every server: meshd_handler_errors_total{server,handler}.
  const errors = new HandlerErrors({ logger: logger.child({ component: 'handlers' }), registry, clock });

  if (options.configDir && options.store) throw new Error('--config-dir and --store are two sources of mesh config; give one (with --store, meshd config apply -f DIR puts the config in the store)');
  const source = await openStateSource({ store: options.store, logger, clock, registry });
  // What start-up acquired, undone in reverse when a later step fails: a failed start leaves no
  // port bound, no CA lock held, no watcher or timer running and no store session open.
  const acquired = new StartupUndo(() => source.close());
  const abandon = (err: unknown): Promise<never> => acquired.abandon(err);
  const mesh = await MeshState.open({ configDir: options.configDir, store: source.store, logger, trustDomain: options.trustDomain, trustDomainFromFlag: options.trustDomainFromFlag ?? false, clock }).catch(abandon);
  acquired.add(() => mesh.close());
  const trustDomain = mesh.snapshot.mesh.trustDomain;
  const rotation = (): RotationPolicy => ({ fraction: options.rotationFraction ?? mesh.snapshot.mesh.certificateRotationFraction, jitter: SVID_ROTATION.jitter });
  const workloadTtl = (): number => options.workloadCertTtlMs ?? mesh.snapshot.mesh.certificateTtlMs;
  const policyError = validateRotationPolicy(rotation());
  if (policyError) await abandon(new Error(policyError));

  const ca = await openCertificateAuthority({
    dataDir: options.dataDir,
    caDir: options.caDir,
    rootBackend: source.rootBackend,
    trustDomain,
    rootKeyType: options.rootKeyType,
    rootTtlMs: options.rootTtlMs,
    defaultLeafTtlMs: workloadTtl(),
    maxLeafTtlMs: options.maxWorkloadCertTtlMs,
    clock,
    logger: logger.child({ component: 'ca' }),
    registry,
    mintWorkers: options.caWorkers ?? defaultMintWorkers(),
  }).catch(abandon);
  acquired.add(() => ca.stop());
  source.follow(ca);
  const tokens = await source.tokenAuthority(options.dataDir).catch(abandon);
  // Join tokens' use records and revocations: shared by every replica through the store, else in the data dir.
  const tokenLedger = options.tokenLedger ?? (source.store
    ? await storeTokenLedger(source.store, clock, logger.child({ component: 'auth' })).catch(abandon)
    : await DataDirTokenLedger.open(options.dataDir, clock).catch(abandon));
  const signingCertificates = signingCertificatesCache();
  const authenticator = new MeshAuthenticator({
    trustDomain,
    tokens,
    ledger: tokenLedger,
    workloadEntry: (namespace, name) => workloadEntryAccount(mesh.snapshot, namespace, name),
    // Roots of the bundle, plus the intermediates of a plug-in CA (meshd's own serving chain carries them).
    issuers: () => signingCertificates(ca.trustBundle().rootsPem, serving.svid?.chainPem),
    clock,
    logger: logger.child({ component: 'auth' }),
    failures: new Counter({ name: 'citadel_server_authentication_failure_count', help: 'The number of authentication failures.', registers: [registry] }),
    failuresByReason: authenticationFailures(registry),
  });

  const core = new DiscoveryCore({ logger, registry, clock, errors, controlPlaneId: controlPlaneSpiffeId(trustDomain) });
  const svids = new SvidCache({
    ca,
    clock,
    logger: logger.child({ component: 'sds' }),
    ttlMs: workloadTtl,
    rotation,
    // Exactly the streams holding a due SVID: same node id AND same proven identity. A stream of
    // another identity that reuses the node id holds an SVID of its own and is not pushed.
    onDue: (due) => void core.push({ proxies: (p) => due.has(svidKey(p.identity.spiffeId, p.id)), typeUrls: [TypeUrl.Secret], reason: 'secret' }),
    tickMs: options.svidTickMs,
  });
  // Foreign bundles join once federation has started; a proxy arriving before then gets the own bundle alone.
  let foreignBundles: ForeignBundleSet | undefined;
  core.register(new SecretGenerator({ source: caSvidSource(ca, svids, () => foreignBundles?.current() ?? NO_FOREIGN_BUNDLES), logger: logger.child({ component: 'sds' }) }));
  mesh.attach(core);

  // A new root goes into every proxy's bundle before anything it signs is handed out.
  const unsubscribeBundle = ca.onBundleChange((bundle) => {
    logger.info({ sequence: bundle.sequence, roots: bundle.rootsPem.length }, 'trust bundle changed; pushing it to every proxy');
    void core.push({ typeUrls: [TypeUrl.Secret], reason: 'root-rotation' });
  });

  const serving = new ServingIdentity({
    ca, clock, logger: logger.child({ component: 'serving-cert' }),
    spiffeId: controlPlaneSpiffeId(trustDomain),
    dnsNames: DEFAULT_SERVING_DNS_NAMES,
    ttlMs: workloadTtl(),
    rotation: rotation(),
    onRenewed: (svid) => {
      credentials.update({ keyPem: svid.keyPem, chainPem: svid.chainPem, rootsPem: ca.trustBundle().rootsPem.join('') });
      for (const listener of servingRenewed) listener();
    },
  });
  const servingRenewed = new Set<() => void>();
  acquired.add(() => serving.stop());
  const first = await serving.start().catch(abandon);
  const credentials = new RotatingServerCredentials({ keyPem: first.keyPem, chainPem: first.chainPem, rootsPem: ca.trustBundle().rootsPem.join('') });
  const unsubscribeServing = ca.onBundleChange(() => void serving.renew());

  // Telemetry: sidecars' access logs become istio_* series; peers are named from the mesh registry.
  const ingest = new AccessLogIngester({
    registry, logger: logger.child({ component: 'telemetry' }), resolver: meshWorkloadResolver(mesh.snapshot, TELEMETRY_CLUSTER), defaultCluster: TELEMETRY_CLUSTER, clock,
    seriesIdleMs: options.telemetrySeriesIdleMs,
  });
  mesh.onSnapshot((snapshot) => ingest.setResolver(meshWorkloadResolver(snapshot, TELEMETRY_CLUSTER)));

  // Per identity, when the first workload certificate runs out (SDS: connected proxies; CSR API: until renewed or expired).
  const certExpiry = new WorkloadCertExpiry({
    registry, clock, sdsHeld: connectedSvids(() => core.connections(), (proxyId, spiffeId) => svids.peek(proxyId, spiffeId)),
  });

  const secureServer = new Server(GRPC_SERVER_OPTIONS);
  const plainServer = new Server(GRPC_SERVER_OPTIONS);
  for (const server of [secureServer, plainServer]) {
    addDiscoveryServices(server, { core, authenticator, admit: mesh.admit, logger, errors });
    addCsrService(server, { ca, authenticator, logger, errors, onIssued: (who, issued) => certExpiry.csrIssued(who, issued) });
  }
  const accessLogs = [secureServer, plainServer].map((server) => addAccessLogService(server, { authenticator, ingest, logger, registry, errors }));
  acquired.add(() => { ingest.stop(); for (const server of [secureServer, plainServer]) server.forceShutdown(); });
  const securePort = await bind(secureServer, grpcBindAddress(secure.host, secure.port), credentials).catch(abandon);
  const plainPort = await bind(plainServer, grpcBindAddress(plain.host, plain.port), ServerCredentials.createInsecure()).catch(abandon);

  ca.start();
  svids.start();
  acquired.add(() => svids.stop());
  let ready = true;
  let http: HttpServerHandle | undefined;
  http = await startHttpServer(monitoring.host, monitoring.port, monitoringRoutes({ registry, ca, core, mesh, ready: () => ready, foreignBundles: () => foreignBundles, now: () => clock.now() }), { name: 'monitoring', logger, errors }).catch(abandon);
  acquired.add(() => http?.close());
  const federation = await startFederation({
    options: options.federation, dataDir: options.dataDir, trustDomain, mesh, ca, registry, clock, logger: logger.child({ component: 'federation' }),
    serving: { current: () => serving.svid ?? first, onChange: (l) => { servingRenewed.add(l); return () => servingRenewed.delete(l); } },
  }).catch(abandon);
  acquired.add(() => federation.stop());
  foreignBundles = federation.bundles;
  let pushedForeign = foreignBundles.current();
  if (pushedForeign.size > 0) void core.push({ typeUrls: [TypeUrl.Secret], reason: 'federated-bundle' });
  const unsubscribeForeign = foreignBundles.onChange((next) => {
    const push = foreignBundlePush(pushedForeign, next);
    pushedForeign = next;
    if (push) void core.push(push);
  });
  // With a store: this replica's proxies in the store's registry, for `meshd proxy-status --store`.
  const presence = source.store && source.replicaId !== undefined
    ? new ReplicaPresence({
      registry: source.store.proxies,
      replica: { id: source.replicaId, address: reachableAddress(monitoring.host, http.port), startedAt: clock.now() },
      connections: () => core.proxyConnections(),
      leader: source.store.leader, clock, logger: logger.child({ component: 'proxy-registry' }),
      ...(options.store?.presenceIntervalMs !== undefined ? { intervalMs: options.store.presenceIntervalMs } : {}),
    })
    : undefined;
  presence?.start();
  logger.info({
    trustDomain, secureGrpc: `${secure.host}:${securePort}`, grpc: `${plain.host}:${plainPort}`, monitoring: `${monitoring.host}:${http.port}`,
    dataDir: options.dataDir, configDir: options.configDir ?? null, caDir: options.caDir ?? null, store: source.location ?? null,
  }, 'meshd is serving');

  let stopped: Promise<void> | undefined;
  const stop = (graceMs = SHUTDOWN_GRACE_MS): Promise<void> => {
    stopped ??= (async () => {
      ready = false;
      unsubscribeBundle();
      unsubscribeServing();
      unsubscribeForeign();
      core.close(status.UNAVAILABLE, 'meshd is shutting down; reconnect to another instance');
      for (const als of accessLogs) als.close();
      ingest.stop();
      await Promise.all([secureServer, plainServer].map((s) => shutdownGrpcServer(s, graceMs)));
      await presence?.stop();
      svids.stop();
      serving.stop();
      ca.stop();
      await federation.stop();
      await mesh.close();
      await source.close();
      await http?.close();
      http = undefined;
      logger.info('meshd stopped');
    })();
    return stopped;
  };

  return {
    ports: { secureGrpc: securePort, grpc: plainPort, monitoring: http.port, ...(federation.port !== undefined ? { federation: federation.port } : {}) },
    ca, core, tokens, svids, registry, errors, foreignBundles: federation.bundles, store: source.store, stop,
  };
}

/**
 * The certificates a client SVID may be signed by, parsed once per bundle and serving chain: every
 * authentication by certificate asks (a renewal storm asks thousands of times a second), and
 * parsing them each time was a tenth of the CPU of a renewal.
 */
function signingCertificatesCache(): (rootsPem: readonly string[], servingChainPem: string | undefined) => X509Certificate[] {
  let last: { key: string; certificates: X509Certificate[] } | undefined;
  return (rootsPem, servingChainPem) => {
    const key = `${rootsPem.join('')}|${servingChainPem ?? ''}`;
    if (last?.key !== key) {
      const intermediates = splitPemCertificates(servingChainPem ?? '').slice(1);
      last = { key, certificates: [...rootsPem.flatMap(splitPemCertificates), ...intermediates].map((pem) => new X509Certificate(pem)) };
    }
    return last.certificates;
  };
}


/** Undo steps of a start-up in progress; `abandon` runs them newest first, then rethrows. */
class StartupUndo {
  private readonly steps: Array<() => unknown>;

  constructor(first: () => unknown) {
    this.steps = [first];
  }

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  async abandon(err: unknown): Promise<never> {
    for (const step of this.steps.splice(0).reverse()) await Promise.resolve().then(step).catch(() => undefined);
    throw err;
  }
}

/** The store's token ledger with the revocations read once, so a store outage right after start still has them. */
async function storeTokenLedger(store: NonNullable<StateSource['store']>, clock: Clock, logger: Logger): Promise<StoreTokenLedger> {
  const ledger = new StoreTokenLedger({ tokens: store.tokens, leader: store.leader, clock, logger });
  await ledger.load().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not read token revocations yet; they are read at the first token use'));
  return ledger;
}

/** Where another host reaches a server bound to `host`: the machine's name when bound to every interface. */
function reachableAddress(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? hostname() : host;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

function bind(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(new Error(`cannot listen on ${address}: ${err.message}`)) : resolve(port)));
  });
}

