import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { ManagedCertificateAuthority } from '../ca/index.js';
import {
  DataDirBundleStore, FederatedBundles, startBundleEndpoint, type BundleEndpointHandle, type BundleEndpointProfile,
  type ServingCertificateSource,
} from '../federation/index.js';
import { parseHostPort } from './addresses.js';
import type { MeshState } from './mesh-state.js';

/**
 * SPIFFE federation in the composition root: meshd's bundle endpoint (served only with
 * --federation-addr) and the bundles of the foreign trust domains the config federates with
 * (ClusterFederatedTrustDomain), kept current and stored in the data dir.
 */
export interface FederationOptions {
  /** host:port of the bundle endpoint; unset: not served. */
  addr?: string;
  profile?: 'https_spiffe' | 'https_web';
  /** https_web: the server certificate (chain) and key files, re-read when they change. */
  certFile?: string;
  keyFile?: string;
  /** PEM file of CAs trusted for https_web bundle endpoints beside the system list. */
  webCaFile?: string;
}

export interface RunningFederation {
  bundles: FederatedBundles;
  /** The bundle endpoint's port, when served. */
  port?: number;
  stop(): Promise<void>;
}

/** Flag combinations that cannot work; checked before anything listens. */
export function checkFederationOptions(o: FederationOptions = {}): void {
  const profile = o.profile ?? 'https_spiffe';
  if (o.addr !== undefined) parseHostPort(o.addr, '--federation-addr');
  if (o.addr === undefined && (o.profile !== undefined || o.certFile !== undefined || o.keyFile !== undefined)) {
    throw new Error('--federation-profile, --federation-cert-file and --federation-key-file configure the bundle endpoint: add --federation-addr');
  }
  if (profile === 'https_web' && (o.certFile === undefined || o.keyFile === undefined)) {
    throw new Error('--federation-profile https_web needs --federation-cert-file and --federation-key-file (a certificate foreign trust domains verify with Web PKI)');
  }
  if (profile === 'https_spiffe' && (o.certFile !== undefined || o.keyFile !== undefined)) {
    throw new Error('--federation-cert-file and --federation-key-file are for --federation-profile https_web; https_spiffe serves with meshd\'s own SVID');
  }
}

export async function startFederation(deps: {
  options?: FederationOptions;
  dataDir: string;
  trustDomain: string;
  mesh: MeshState;
  ca: ManagedCertificateAuthority;
  serving: ServingCertificateSource;
  registry: Registry;
  logger: Logger;
  clock: Clock;
}): Promise<RunningFederation> {
  const o = deps.options ?? {};
  checkFederationOptions(o);
  let extraWebCaPem: string | undefined;
  if (o.webCaFile !== undefined) {
    try {
      extraWebCaPem = await readFile(o.webCaFile, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --federation-web-ca-file ${o.webCaFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const bundles = new FederatedBundles({
    ownTrustDomains: () => [deps.trustDomain, ...deps.mesh.snapshot.mesh.trustDomainAliases],
    store: new DataDirBundleStore(deps.dataDir),
    logger: deps.logger,
    registry: deps.registry,
    clock: deps.clock,
    extraWebCaPem,
  });
  await bundles.start(deps.mesh.snapshot.federatedTrustDomains);
  deps.mesh.onSnapshot((snapshot) => void bundles.apply(snapshot.federatedTrustDomains));

  let endpoint: BundleEndpointHandle | undefined;
  if (o.addr !== undefined) {
    const { host, port } = parseHostPort(o.addr, '--federation-addr');
    const profile: BundleEndpointProfile = o.profile === 'https_web'
      ? { type: 'https_web', certFile: o.certFile!, keyFile: o.keyFile! }
      : { type: 'https_spiffe', identity: deps.serving };
    try {
      endpoint = await startBundleEndpoint({ host, port, profile, bundle: () => deps.ca.bundleJwks(), logger: deps.logger, registry: deps.registry, clock: deps.clock });
    } catch (err) {
      await bundles.stop();
      throw err;
    }
  }
  return {
    bundles,
    ...(endpoint ? { port: endpoint.port } : {}),
    stop: async () => {
      await endpoint?.close();
      await bundles.stop();
    },
  };
}
