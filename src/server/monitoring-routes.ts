import type { Registry } from 'prom-client';
import type { ManagedCertificateAuthority } from '../ca/index.js';
import type { DiscoveryCore } from '../xds/core/index.js';
import type { MeshState } from './mesh-state.js';
import { json, type HttpHandler } from './http-server.js';
import { encodeBundleDocument } from '../federation/bundle-document.js';
import { exposition } from '../telemetry/exposition.js';
import type { ForeignBundleSet } from '../federation/index.js';
import { X509Certificate } from 'node:crypto';

export interface MonitoringDeps {
  registry: Registry;
  ca: ManagedCertificateAuthority;
  core: DiscoveryCore;
  mesh: MeshState;
  ready: () => boolean;
  /** The trusted foreign bundles, once federation has started; and the clock their age is read on. */
  foreignBundles?: () => ForeignBundleSet | undefined;
  now?: () => number;
}

/**
 * Each federated trust domain's bundle: where it came from, its spiffe_sequence, its age, and
 * its authorities' fingerprints and validity. Bundles are public; nothing here is a key.
 */
function federationView(deps: MonitoringDeps): unknown {
  const now = deps.now?.() ?? Date.now();
  const bundles = [...(deps.foreignBundles?.()?.current().values() ?? [])];
  return {
    trustDomains: bundles.map((b) => ({
      trustDomain: b.trustDomain,
      sequence: b.sequence?.toString() ?? null,
      source: b.source,
      from: b.from,
      fetchedAt: new Date(b.fetchedAt).toISOString(),
      ageSeconds: Math.max(0, Math.round((now - b.fetchedAt) / 1000)),
      authorities: b.rootsPem.map((pem) => {
        const x = new X509Certificate(pem);
        return { fingerprint256: x.fingerprint256, subject: x.subject, notBefore: new Date(x.validFrom).toISOString(), notAfter: new Date(x.validTo).toISOString() };
      }),
    })),
  };
}

/** The HTTP endpoints of the monitoring port, as istiod serves them on 15014. */
export function monitoringRoutes(deps: MonitoringDeps): Map<string, HttpHandler> {
  return new Map<string, HttpHandler>([
    ['/healthz', () => ({ body: 'ok\n' })],
    ['/ready', () => (deps.ready() ? { body: 'ready\n' } : { status: 503, body: 'not ready\n' })],
    // In pieces: at the series bounds the text is ~60 MB, mostly cached bytes of unchanged series.
    ['/metrics', async () => ({ contentType: deps.registry.contentType, body: await exposition(deps.registry) })],
    // SPIFFE bundle (JWKS with spiffe_sequence and spiffe_refresh_hint); ?format=pem for the PEM roots.
    ['/trust-bundle', (url) => (url.searchParams.get('format') === 'pem'
      ? { contentType: 'application/x-pem-file', body: deps.ca.trustBundle().rootsPem.join('') }
      : { contentType: 'application/json', body: encodeBundleDocument(deps.ca.bundleJwks()) })],
    ['/debug/connections', () => json(deps.core.connections())],
    ['/debug/federation', () => json(federationView(deps))],
    ['/debug/config', () => {
      const s = deps.mesh.snapshot;
      return json({
        version: s.version,
        mesh: s.mesh,
        counts: { peerAuthentications: s.peerAuthentications.length, serviceEntries: s.serviceEntries.length, workloadEntries: s.workloadEntries.length },
        messages: s.messages,
      });
    }],
  ]);
}
