/**
 * WorkloadEntry (networking.istio.io/v1, v1beta1, v1alpha3) → model, and the endpoint rules
 * shared with ServiceEntry.spec.endpoints (Istio's validateWorkloadEntry), messages as Istio words them.
 */
import type { ObjectMeta, WorkloadEntry, WorkloadSpec } from './model.js';
import { Reader } from './fields.js';
import { dns1123SubdomainError, fqdnError, isPortName, labelErrors, portError } from './rules.js';
import { isIP } from 'node:net';

const WORKLOAD_FIELDS = ['address', 'ports', 'labels', 'network', 'locality', 'weight', 'serviceAccount'];

export interface EndpointRules {
  /** Port names the owning ServiceEntry defines; undefined for a standalone WorkloadEntry. */
  servicePorts?: ReadonlySet<string>;
  /** DNS resolution allows hostnames; meshd serves WorkloadEntries over EDS, which needs IPs. */
  allowFqdn: boolean;
}

export function parseWorkloadSpec(v: unknown, r: Reader, path: (string | number)[], rules: EndpointRules): WorkloadSpec {
  const s = r.map(v, path) ?? {};
  r.fields(s, path, WORKLOAD_FIELDS);
  const spec: WorkloadSpec = { address: '', ports: {}, labels: {}, serviceAccount: '' };

  const address = r.string(s.address, [...path, 'address']) ?? '';
  const network = r.string(s.network, [...path, 'network']);
  if (network) spec.network = network;
  spec.address = address;
  if (address === '') {
    if (!network) r.issues.error([...path, 'address'], 'address is required');
    else r.issues.warn([...path, 'address'], `address is unset with network ${JSON.stringify(network)}`);
  } else if (address.startsWith('unix://')) {
    r.issues.error([...path, 'address'], `unix endpoint ${address} is not supported by meshd (sidecars reach workloads over TCP)`);
  } else if (isIP(address) === 0) {
    if (!rules.allowFqdn) {
      r.issues.error([...path, 'address'], `endpoint address ${JSON.stringify(address)} is not a valid IP address`);
    } else if (fqdnError(address) !== undefined) {
      r.issues.error([...path, 'address'], `endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`);
    }
  }

  const ports = r.map(s.ports, [...path, 'ports']);
  if (ports) {
    for (const [name, raw] of Object.entries(ports)) {
      const p = r.uint(raw, [...path, 'ports', name]);
      if (p === undefined) continue;
      if (rules.servicePorts && !rules.servicePorts.has(name)) {
        r.issues.error([...path, 'ports', name], `endpoint port ${p} is not defined by the service entry`);
      }
      if (!isPortName(name)) r.issues.error([...path, 'ports', name], `invalid port name: ${name}`);
      const perr = portError(p);
      if (perr) r.issues.error([...path, 'ports', name], perr);
      spec.ports = { ...spec.ports, [name]: p };
    }
  }

  const labels = r.stringMap(s.labels, [...path, 'labels']);
  if (labels) {
    for (const e of labelErrors(labels)) r.issues.error([...path, 'labels'], e);
    spec.labels = labels;
  }

  const locality = r.string(s.locality, [...path, 'locality']);
  if (locality) spec.locality = locality;
  const weight = r.uint(s.weight, [...path, 'weight']);
  if (weight !== undefined) spec.weight = weight;

  const sa = r.string(s.serviceAccount, [...path, 'serviceAccount']);
  if (sa) {
    // A service account is a Kubernetes object name; it becomes spiffe://<td>/ns/<ns>/sa/<sa>.
    const err = dns1123SubdomainError(sa);
    if (err) r.issues.error([...path, 'serviceAccount'], `serviceAccount ${JSON.stringify(sa)} is invalid: ${err}`);
    spec.serviceAccount = sa;
  }
  return spec;
}

export function parseWorkloadEntry(spec: unknown, r: Reader, meta: ObjectMeta): WorkloadEntry {
  return { kind: 'WorkloadEntry', meta, spec: parseWorkloadSpec(spec, r, ['spec'], { allowFqdn: false }) };
}
