import type { WorkloadSpec } from '../config/model.js';
import { workloadTlsMode } from './registry.js';

/**
 * Does an endpoint run a sidecar (or a proxyless mesh client) that terminates mesh mTLS?
 * Auto mTLS sends mTLS only to such endpoints (pilot/pkg/xds/endpoints/mtls_checker.go).
 *
 * - Istio's rule for WorkloadEntries (getTLSModeFromWorkloadEntry, workloadTlsMode in registry.ts): the label
 *   `security.istio.io/tlsMode` decides when present (`istio` = yes); without it, an entry with
 *   a serviceAccount counts as having a sidecar, as Istio assumes for VMs.
 * - meshd's own marker: the WorkloadEntry annotation `meshd.io/sidecar`, `"true"` or
 *   `"false"`, overrides both (e.g. `"false"` for a workload that has a service account but no
 *   sidecar yet, so clients keep plaintext to it).
 */
export const ISTIO_TLS_MODE_LABEL = 'security.istio.io/tlsMode';
const MESHD_SIDECAR_ANNOTATION = 'meshd.io/sidecar';

export function hasMeshSidecar(spec: WorkloadSpec, annotations: Readonly<Record<string, string>> = {}): { sidecar: boolean; reason: string } {
  const marker = annotations[MESHD_SIDECAR_ANNOTATION];
  if (marker === 'true') return { sidecar: true, reason: `annotation ${MESHD_SIDECAR_ANNOTATION}="true"` };
  if (marker === 'false') return { sidecar: false, reason: `annotation ${MESHD_SIDECAR_ANNOTATION}="false"` };
  const label = spec.labels[ISTIO_TLS_MODE_LABEL];
  if (label !== undefined) {
    return { sidecar: label === 'istio', reason: `label ${ISTIO_TLS_MODE_LABEL}=${label}` };
  }
  return workloadTlsMode(spec) === 'istio'
    ? { sidecar: true, reason: `service account "${spec.serviceAccount}" set (Istio assumes a sidecar)` }
    : { sidecar: false, reason: `no ${ISTIO_TLS_MODE_LABEL} label and no service account` };
}
