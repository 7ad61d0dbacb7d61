import type { Registry } from 'prom-client';
import type { ManagedCertificateAuthority } from '../ca/index.js';
import type { DiscoveryCore } from '../xds/core/index.js';
import type { MeshState } from './mesh-state.js';
import { json, type HttpHandler } from './http-server.js';
import { encodeBundleDocument } from '../federation/bundle-document.js';
import { exposition } from '../telemetry/exposition.js';

export interface MonitoringDeps {
  registry: Registry;
  ca: ManagedCertificateAuthority;
  core: DiscoveryCore;
  mesh: MeshState;
  ready: () => boolean;
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
