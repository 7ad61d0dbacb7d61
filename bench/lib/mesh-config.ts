import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A synthetic mesh in Istio's own YAML for the xDS benchmark: `namespaces` namespaces, each
 * with `servicesPerNamespace` ServiceEntries (one HTTP port, a loopback VIP) and
 * `workloadsPerService` WorkloadEntries behind each (own loopback address, own service
 * account per service), a namespace-wide PeerAuthentication per namespace in its own file
 * (so the benchmark flips one namespace by rewriting one small file), and a mesh-wide
 * PERMISSIVE policy in the root namespace.
 */
export interface MeshShape {
  namespaces: number;
  servicesPerNamespace: number;
  workloadsPerService: number;
  /** One AuthorizationPolicy per workload (selecting it by its own label), a few rules each. */
  authorizationPolicies?: boolean;
}

/** An ALLOW policy for one workload: callers of the same namespace on GET/POST, a path DENY-like notPaths, an ipBlock rule. */
export function authorizationPolicyYaml(namespace: string, workload: string, serviceAccount: string): string {
  return [
    'apiVersion: security.istio.io/v1',
    'kind: AuthorizationPolicy',
    'metadata:',
    `  name: ${workload}`,
    `  namespace: ${namespace}`,
    'spec:',
    '  selector:',
    '    matchLabels:',
    `      workload: ${workload}`,
    '  rules:',
    '  - from:',
    '    - source:',
    `        principals: ["cluster.local/ns/${namespace}/sa/${serviceAccount}"]`,
    `        namespaces: ["${namespace}"]`,
    '    to:',
    '    - operation:',
    '        methods: ["GET", "POST"]',
    '        notPaths: ["/admin*"]',
    '  - from:',
    '    - source:',
    '        ipBlocks: ["10.0.0.0/8"]',
    '    to:',
    '    - operation:',
    '        ports: ["8080"]',
    '  - when:',
    '    - key: request.headers[x-bench]',
    '      values: ["allowed"]',
  ].join('\n');
}

export interface BenchWorkload {
  namespace: string;
  name: string;
  serviceAccount: string;
}

export interface BenchMesh {
  dir: string;
  workloads: BenchWorkload[];
  /** The file holding namespace `ns`'s PeerAuthentication. */
  policyFile(namespace: string): string;
}

export const namespaceName = (i: number): string => `ns-${i}`;

export function peerAuthenticationYaml(namespace: string, mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE'): string {
  return [
    'apiVersion: security.istio.io/v1',
    'kind: PeerAuthentication',
    'metadata:',
    '  name: default',
    `  namespace: ${namespace}`,
    'spec:',
    '  mtls:',
    `    mode: ${mode}`,
    '',
  ].join('\n');
}

export async function writeBenchMesh(dir: string, shape: MeshShape): Promise<BenchMesh> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'mesh.yaml'), 'trustDomain: cluster.local\nrootNamespace: istio-system\nenableAutoMtls: true\n');
  await writeFile(join(dir, 'istio-system.yaml'), peerAuthenticationYaml('istio-system', 'PERMISSIVE'));
  const workloads: BenchWorkload[] = [];
  for (let n = 0; n < shape.namespaces; n++) {
    const ns = namespaceName(n);
    const docs: string[] = [];
    for (let s = 0; s < shape.servicesPerNamespace; s++) {
      const svc = `svc-${s}`;
      docs.push([
        'apiVersion: networking.istio.io/v1',
        'kind: ServiceEntry',
        'metadata:',
        `  name: ${svc}`,
        `  namespace: ${ns}`,
        'spec:',
        '  hosts:',
        `  - ${svc}.${ns}.svc.cluster.local`,
        '  addresses:',
        `  - 127.1.${n}.${s + 1}`,
        '  location: MESH_INTERNAL',
        '  resolution: STATIC',
        '  ports:',
        '  - number: 8080',
        '    name: http',
        '    protocol: HTTP',
        '  workloadSelector:',
        '    labels:',
        `      app: ${svc}`,
      ].join('\n'));
      for (let w = 0; w < shape.workloadsPerService; w++) {
        const name = `${svc}-${w}`;
        const index = s * shape.workloadsPerService + w;
        docs.push([
          'apiVersion: networking.istio.io/v1',
          'kind: WorkloadEntry',
          'metadata:',
          `  name: ${name}`,
          `  namespace: ${ns}`,
          'spec:',
          `  address: 127.${10 + n}.${index >> 8}.${(index & 255) + 1}`,
          `  serviceAccount: ${svc}`,
          '  labels:',
          `    app: ${svc}`,
          ...(shape.authorizationPolicies === true ? [`    workload: ${name}`] : []),
          '    version: v1',
          '  ports:',
          '    http: 8080',
        ].join('\n'));
        workloads.push({ namespace: ns, name, serviceAccount: svc });
        if (shape.authorizationPolicies === true) docs.push(authorizationPolicyYaml(ns, name, svc));
      }
    }
    await writeFile(join(dir, `${ns}.yaml`), `${docs.join('\n---\n')}\n`);
    await writeFile(join(dir, `${ns}-peer-authentication.yaml`), peerAuthenticationYaml(ns, 'PERMISSIVE'));
  }
  return { dir, workloads, policyFile: (ns) => join(dir, `${ns}-peer-authentication.yaml`) };
}
