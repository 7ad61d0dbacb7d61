/**
 * ServiceEntry (networking.istio.io/v1, v1beta1, v1alpha3) → model, with Istio's
 * ValidateServiceEntry rules and messages (pkg/config/validation/validation.go), plus the few
 * rules meshd adds because of what it can serve (each says so in its message).
 */
import type { ObjectMeta, PortProtocol, ServiceEntry, ServicePort, WorkloadSpec } from './model.js';
import { Reader } from './fields.js';
import { exportToErrors, fqdnError, ipSubnetError, isPortName, portError, wildcardDomainError } from './rules.js';
import { parseWorkloadSpec } from './parse-workload-entry.js';

const SPEC_FIELDS = ['hosts', 'addresses', 'ports', 'location', 'resolution', 'endpoints', 'workloadSelector', 'exportTo', 'subjectAltNames'];
const PORT_FIELDS = ['number', 'protocol', 'name', 'targetPort'];

/** Istio's protocol.Parse (case-insensitive) restricted to the protocols the model carries. */
const PROTOCOLS: Readonly<Record<string, PortProtocol>> = {
  http: 'HTTP', http2: 'HTTP2', grpc: 'GRPC', 'grpc-web': 'GRPC-WEB', https: 'HTTPS', tcp: 'TCP',
  tls: 'TLS', mongo: 'MONGO', redis: 'REDIS', mysql: 'MYSQL',
};
/** Protocols Istio knows but meshd cannot serve. */
const UNSERVED_PROTOCOLS = new Set(['udp', 'http_proxy']);

const HTTP_FAMILY: ReadonlySet<PortProtocol> = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const TLS_FAMILY: ReadonlySet<PortProtocol> = new Set(['HTTPS', 'TLS']);

export function parseProtocol(text: string): PortProtocol | undefined {
  return PROTOCOLS[text.toLowerCase()];
}

function readPorts(r: Reader, v: unknown): ServicePort[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    r.issues.error(['spec', 'ports'], 'spec.ports must be a list');
    return [];
  }
  const out: ServicePort[] = [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  v.forEach((raw, i) => {
    const path = ['spec', 'ports', i];
    if (raw === null || raw === undefined) {
      r.issues.error(path, 'service entry port may not be null');
      return;
    }
    const p = r.map(raw, path);
    if (!p) return;
    r.fields(p, path, PORT_FIELDS);
    const number = r.uint(p.number, [...path, 'number']) ?? 0;
    const name = r.string(p.name, [...path, 'name']) ?? '';
    const protocolText = r.string(p.protocol, [...path, 'protocol']) ?? '';
    const targetPort = r.uint(p.targetPort, [...path, 'targetPort']) ?? 0;

    if (names.has(name)) r.issues.error([...path, 'name'], `service entry port name ${JSON.stringify(name)} already defined`);
    names.add(name);
    if (numbers.has(number)) r.issues.error([...path, 'number'], `service entry port ${number} already defined`);
    numbers.add(number);
    if (targetPort !== 0) {
      const err = portError(targetPort);
      if (err) r.issues.error([...path, 'targetPort'], err);
    }
    if (!isPortName(name)) r.issues.error([...path, 'name'], `invalid port name: ${name}`);
    let protocol: PortProtocol = 'UNKNOWN';
    if (protocolText !== '') {
      const parsed = parseProtocol(protocolText);
      if (parsed) protocol = parsed;
      else if (UNSERVED_PROTOCOLS.has(protocolText.toLowerCase())) {
        r.issues.error([...path, 'protocol'], `protocol ${protocolText} is not supported by meshd`);
      } else r.issues.error([...path, 'protocol'], `unsupported protocol: ${protocolText}`);
    }
    const numErr = portError(number);
    if (numErr) r.issues.error([...path, 'number'], numErr);
    out.push({ number, protocol, name, targetPort: targetPort || number });
  });
  return out;
}

export function parseServiceEntry(spec: unknown, r: Reader, meta: ObjectMeta): ServiceEntry {
  const s = r.map(spec, ['spec']) ?? {};
  r.fields(s, ['spec'], SPEC_FIELDS);

  const resolution = r.enumValue(s.resolution, ['spec', 'resolution'], ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const) ?? 'NONE';
  const location = r.enumValue(s.location, ['spec', 'location'], ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const) ?? 'MESH_EXTERNAL';

  // workloadSelector (networking WorkloadSelector: `labels`), Istio's ValidateAlphaWorkloadSelector.
  let workloadSelector: Record<string, string> | undefined;
  if (s.workloadSelector !== undefined && s.workloadSelector !== null) {
    const sel = r.map(s.workloadSelector, ['spec', 'workloadSelector']) ?? {};
    r.fields(sel, ['spec', 'workloadSelector'], ['labels']);
    workloadSelector = r.stringMap(sel.labels, ['spec', 'workloadSelector', 'labels']) ?? {};
    for (const [k, v] of Object.entries(workloadSelector)) {
      if (k === '') r.issues.error(['spec', 'workloadSelector', 'labels'], `empty key is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
      if (k.includes('*') || v.includes('*')) r.issues.error(['spec', 'workloadSelector', 'labels', k], `wildcard is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
    }
    if (Object.keys(workloadSelector).length === 0) {
      r.issues.warn(['spec', 'workloadSelector'], 'service entry: workload selector specified without labels, will be applied to all services in namespace');
    }
  }
  const endpointsGiven = Array.isArray(s.endpoints);
  if (s.endpoints !== undefined && s.endpoints !== null && !endpointsGiven) r.issues.error(['spec', 'endpoints'], 'spec.endpoints must be a list');
  if (workloadSelector !== undefined && endpointsGiven) {
    r.issues.error(['spec', 'workloadSelector'], 'only one of WorkloadSelector or Endpoints is allowed in Service Entry');
  }

  const hosts = r.stringList(s.hosts, ['spec', 'hosts']);
  if (hosts.length === 0) r.issues.error(['spec', 'hosts'], 'service entry must have at least one host');
  hosts.forEach((h, i) => {
    if (h === '*') {
      r.issues.error(['spec', 'hosts', i], `invalid host ${h}`);
      return;
    }
    const err = wildcardDomainError(h);
    if (err) r.issues.error(['spec', 'hosts', i], err);
    if (resolution !== 'DYNAMIC_DNS' && h.includes('*') && !h.startsWith('*.')) {
      r.issues.warn(['spec', 'hosts', i], `partial wildcard ${JSON.stringify(h)} not allowed`);
    }
  });

  const addresses = r.stringList(s.addresses, ['spec', 'addresses']);
  let cidrFound = false;
  addresses.forEach((a, i) => {
    cidrFound ||= a.includes('/');
    const err = ipSubnetError(a);
    if (err) r.issues.error(['spec', 'addresses', i], err);
  });
  if (cidrFound && resolution !== 'NONE' && resolution !== 'STATIC') {
    r.issues.error(['spec', 'addresses'], 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  }

  const ports = readPorts(r, s.ports);
  // meshd builds one outbound cluster (and inbound chain) per port; a port-less entry serves nothing.
  if (ports.length === 0 && (s.ports === undefined || s.ports === null || (Array.isArray(s.ports) && s.ports.length === 0))) {
    r.issues.error(['spec', 'ports'], 'service entry must have at least one port (meshd serves services per port)');
  }
  const portNames = new Set(ports.map((p) => p.name));

  const endpoints: WorkloadSpec[] = [];
  const rawEndpoints: unknown[] = endpointsGiven ? (s.endpoints as unknown[]) : [];
  switch (resolution) {
    case 'NONE':
      if (rawEndpoints.length !== 0) r.issues.error(['spec', 'endpoints'], 'no endpoints should be provided for resolution type none');
      if (workloadSelector !== undefined) r.issues.warn(['spec', 'workloadSelector'], 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
    case 'DNS':
    case 'DNS_ROUND_ROBIN': {
      const dns = resolution !== 'STATIC';
      if (dns && rawEndpoints.length === 0) {
        for (const h of hosts) {
          const err = fqdnError(h);
          if (err) {
            r.issues.error(['spec', 'hosts'], `hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}, ${err}`);
            break;
          }
        }
      }
      if (resolution === 'DNS_ROUND_ROBIN' && rawEndpoints.length > 1) {
        r.issues.error(['spec', 'endpoints'], `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      }
      rawEndpoints.forEach((e, i) => {
        if (e === null || e === undefined) {
          r.issues.error(['spec', 'endpoints', i], 'endpoint cannot be nil');
          return;
        }
        endpoints.push(parseWorkloadSpec(e, r, ['spec', 'endpoints', i], { servicePorts: portNames, allowFqdn: dns }));
      });
      break;
    }
    case 'DYNAMIC_DNS':
      r.issues.error(['spec', 'resolution'], 'unsupported resolution type DYNAMIC_DNS (meshd serves NONE, STATIC, DNS and DNS_ROUND_ROBIN)');
      break;
  }

  // Plain TCP cannot tell hosts apart, so several hosts need HTTP or TLS ports unless resolution is NONE.
  if (resolution !== 'NONE' && hosts.length > 1 && ports.some((p) => !HTTP_FAMILY.has(p.protocol) && !TLS_FAMILY.has(p.protocol))) {
    r.issues.error(['spec', 'hosts'], 'multiple hosts provided with non-HTTP, non-TLS ports');
  }

  const exportTo = r.stringList(s.exportTo, ['spec', 'exportTo']);
  for (const e of exportToErrors(meta.namespace, exportTo, { serviceEntry: true })) r.issues.error(['spec', 'exportTo'], e);
  const subjectAltNames = r.stringList(s.subjectAltNames, ['spec', 'subjectAltNames']);

  const se: ServiceEntry = {
    kind: 'ServiceEntry',
    meta,
    hosts,
    addresses,
    ports,
    location,
    resolution: resolution === 'DYNAMIC_DNS' ? 'NONE' : resolution,
    endpoints,
    exportTo,
  };
  if (workloadSelector !== undefined) se.workloadSelector = workloadSelector;
  if (subjectAltNames.length > 0) se.subjectAltNames = subjectAltNames;
  return se;
}
