/**
 * ClusterFederatedTrustDomain (spire.spiffe.io/v1alpha1) in the config dir: read as SPIRE's
 * webhook reads it plus meshd's rules, every error at the line of the offending field, the
 * last good version kept, and never meshd's own trust domain or an alias.
 */
import t from 'tap';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/index.js';
import { encodeBundleDocument } from '../../src/federation/bundle-document.js';
import { diffSnapshots } from '../../src/config/diff.js';
import { tempDir } from '../ca/helpers.js';
import { snapshotOf, yaml } from './helpers.js';

async function bundleOf(t: Tap, trustDomain: string): Promise<string> {
  const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain, registry: new Registry(), autoRotate: false });
  return encodeBundleDocument(ca.bundleJwks());
}
type Tap = Parameters<typeof tempDir>[0];

/** The bundle as a YAML block scalar under `trustDomainBundle: |`, indented for spec level. */
function block(json: string, indent = '    '): string {
  return json.trimEnd().split('\n').map((l) => indent + l).join('\n');
}

const HEAD = (name: string): string => yaml`
  apiVersion: spire.spiffe.io/v1alpha1
  kind: ClusterFederatedTrustDomain
  metadata:
    name: ${name}
`; // 4 lines; spec starts on line 5

function errorsOf(files: Record<string, string>): [string, number, string][] {
  return snapshotOf(files).messages.filter((m) => m.level === 'error').map((m) => [m.source.file, m.source.line, m.message]);
}

t.test('the three shapes are read into the model: https_web, https_spiffe with its bundle, a static bundle file', async (t) => {
  const west = await bundleOf(t, 'west.example');
  const s = snapshotOf({
    'cfg/federation.yaml': HEAD('east') + yaml`
      spec:
        trustDomain: east.example
        bundleEndpointURL: https://east.example:8443/
        bundleEndpointProfile:
          type: https_web
    ` + '---\n' + HEAD('west') + yaml`
      spec:
        trustDomain: west.example
        bundleEndpointURL: https://meshd.west.example:8443
        bundleEndpointProfile:
          type: https_spiffe
          endpointSPIFFEID: spiffe://west.example/ns/istio-system/sa/meshd
        trustDomainBundle: |
    ` + block(west) + '\n---\n' + yaml`
      apiVersion: spire.spiffe.io/v1alpha1
      kind: ClusterFederatedTrustDomain
      metadata:
        name: north
        annotations:
          meshd.io/trust-domain-bundle-file: bundles/north.json
      spec:
        trustDomain: north.example
    `,
  });
  t.same(s.messages, []);
  t.same(s.federatedTrustDomains.map((f) => [f.meta.name, f.meta.namespace, f.trustDomain, f.endpoint, f.bundle]), [
    ['east', '', 'east.example', { url: 'https://east.example:8443/', profile: { type: 'https_web' } }, undefined],
    ['north', '', 'north.example', undefined, { kind: 'file', path: `${process.cwd()}/cfg/bundles/north.json` }],
    ['west', '', 'west.example', { url: 'https://meshd.west.example:8443', profile: { type: 'https_spiffe', endpointSpiffeId: 'spiffe://west.example/ns/istio-system/sa/meshd' } }, { kind: 'inline', document: west }],
  ], 'sorted by trust domain; cluster-scoped (no namespace); the file path resolved against the config dir');
  t.ok(Object.isFrozen(s.federatedTrustDomains[0]));
});

t.test('bad documents: Istio-style messages at the line of the field', async (t) => {
  const west = await bundleOf(t, 'west.example');
  const rows: Array<{ name: string; text: string; errors: [number, string][] }> = [
    {
      name: 'no spec',
      text: HEAD('x'),
      errors: [[1, 'spec is required']],
    },
    {
      name: 'no trust domain',
      text: HEAD('x') + yaml`
        spec:
          bundleEndpointURL: https://x.example/
          bundleEndpointProfile: {type: https_web}
      `,
      errors: [[5, 'spec.trustDomain is required']],
    },
    {
      name: 'a trust domain that is not a SPIFFE trust domain',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: West.Example
          bundleEndpointURL: https://x.example/
          bundleEndpointProfile: {type: https_web}
      `,
      errors: [[6, 'invalid trustDomain value: the trust domain must be lowercase (found "W")']],
    },
    {
      name: 'a trust domain written as a SPIFFE ID',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: spiffe://west.example
          bundleEndpointURL: https://x.example/
          bundleEndpointProfile: {type: https_web}
      `,
      errors: [[6, 'invalid trustDomain value: the trust domain must not contain a port (or an IPv6 address)']],
    },
    {
      name: 'an http URL, userinfo, a fragment',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: a.example
          bundleEndpointURL: http://a.example/
          bundleEndpointProfile: {type: https_web}
      ` + '---\n' + HEAD('y') + yaml`
        spec:
          trustDomain: b.example
          bundleEndpointURL: https://user:pw@b.example/
          bundleEndpointProfile: {type: https_web}
      ` + '---\n' + HEAD('z') + yaml`
        spec:
          trustDomain: c.example
          bundleEndpointURL: "https://c.example/#x"
          bundleEndpointProfile: {type: https_web}
      ` + '---\n' + HEAD('w') + yaml`
        spec:
          trustDomain: d.example
          bundleEndpointURL: not a url
          bundleEndpointProfile: {type: https_web}
      `,
      errors: [
        [7, 'invalid bundleEndpointURL value: scheme must be "https", got "http"'],
        [16, 'invalid bundleEndpointURL value: cannot contain userinfo'],
        [25, 'invalid bundleEndpointURL value: cannot contain a fragment'],
        [34, 'invalid bundleEndpointURL value: not a valid URL'],
      ],
    },
    {
      name: 'a URL without a profile, a profile without a URL',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: a.example
          bundleEndpointURL: https://a.example/
      ` + '---\n' + HEAD('y') + yaml`
        spec:
          trustDomain: b.example
          bundleEndpointProfile: {type: https_web}
      `,
      errors: [[5, 'spec.bundleEndpointProfile is required with a bundleEndpointURL'], [15, 'spec.bundleEndpointProfile needs spec.bundleEndpointURL']],
    },
    {
      name: 'profile type missing or unknown',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: a.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile:
            endpointSPIFFEID: spiffe://a.example/x
      ` + '---\n' + HEAD('y') + yaml`
        spec:
          trustDomain: b.example
          bundleEndpointURL: https://b.example/
          bundleEndpointProfile:
            type: https_mtls
      `,
      errors: [[8, 'bundleEndpointProfile.type is required: https_web or https_spiffe'], [19, 'invalid bundle endpoint profile type value "https_mtls": expected https_web or https_spiffe']],
    },
    {
      name: 'https_web with an endpoint SPIFFE ID (as SPIRE\'s webhook refuses)',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: a.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile:
            type: https_web
            endpointSPIFFEID: spiffe://a.example/x
      `,
      errors: [[10, 'invalid bundle endpoint profile endpointSPIFFEID value: not applicable to the "https_web" profile']],
    },
    {
      name: 'https_spiffe: no ID, an invalid ID, an ID of another trust domain, a root ID, no bundle',
      text: HEAD('a') + yaml`
        spec:
          trustDomain: west.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile: {type: https_spiffe}
          trustDomainBundle: |
      ` + block(west) + '\n---\n' + HEAD('b') + yaml`
        spec:
          trustDomain: west.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile: {type: https_spiffe, endpointSPIFFEID: "spiffe://west.example/a//b"}
      ` + '---\n' + HEAD('c') + yaml`
        spec:
          trustDomain: west.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile: {type: https_spiffe, endpointSPIFFEID: "spiffe://evil.example/ns/x/sa/y"}
      ` + '---\n' + HEAD('d') + yaml`
        spec:
          trustDomain: west.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile: {type: https_spiffe, endpointSPIFFEID: "spiffe://west.example"}
      ` + '---\n' + HEAD('e') + yaml`
        spec:
          trustDomain: west.example
          bundleEndpointURL: https://a.example/
          bundleEndpointProfile: {type: https_spiffe, endpointSPIFFEID: "spiffe://west.example/ns/istio-system/sa/meshd"}
      `,
      errors: ((): [number, string][] => {
        const base = 9 + west.trimEnd().split('\n').length + 2; // line of the second document's apiVersion
        const needsBundle = 'the https_spiffe profile needs spec.trustDomainBundle (or the meshd.io/trust-domain-bundle-file annotation): the foreign bundle that authenticates the endpoint the first time';
        return [
          [8, 'endpointSPIFFEID is required for the "https_spiffe" profile (the SPIFFE ID the bundle endpoint serves with)'],
          [base + 7, 'invalid bundle endpoint profile endpointSPIFFEID value: invalid SPIFFE ID "spiffe://west.example/a//b": the path has an empty segment'],
          [base + 16, 'endpointSPIFFEID spiffe://evil.example/ns/x/sa/y is not in trust domain west.example; meshd authenticates the endpoint with that trust domain\'s bundle, so it must serve with one of its IDs'],
          [base + 25, 'endpointSPIFFEID spiffe://west.example has no path; a server\'s X509-SVID carries a workload ID such as spiffe://west.example/ns/istio-system/sa/meshd'],
          // The profile is valid only in the last one: there the missing bundle is reported, at spec.
          [base + 31, needsBundle],
        ];
      })(),
    },
    {
      name: 'a trustDomainBundle that is not a bundle of this trust domain',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: east.example
          trustDomainBundle: |
      ` + block(west) + '\n---\n' + HEAD('y') + yaml`
        spec:
          trustDomain: north.example
          trustDomainBundle: '{"keys": [], "keys": []}'
      `,
      errors: [
        [7, 'invalid trustDomainBundle value: keys[0]: the certificate is an authority of trust domain west.example (spiffe://west.example), not east.example'],
        [7 + west.trimEnd().split('\n').length + 8, 'invalid trustDomainBundle value: not JSON: duplicate member name "keys" at line 1, column 14'],
      ],
    },
    {
      name: 'nothing to fetch or trust; an inline bundle and a file at once; an empty file path',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: a.example
      ` + '---\n' + yaml`
        apiVersion: spire.spiffe.io/v1alpha1
        kind: ClusterFederatedTrustDomain
        metadata:
          name: y
          annotations:
            meshd.io/trust-domain-bundle-file: west.json
        spec:
          trustDomain: west.example
          trustDomainBundle: |
      ` + block(west) + '\n---\n' + yaml`
        apiVersion: spire.spiffe.io/v1alpha1
        kind: ClusterFederatedTrustDomain
        metadata:
          name: z
          annotations:
            meshd.io/trust-domain-bundle-file: ""
        spec:
          trustDomain: c.example
      `,
      errors: [
        [5, 'spec needs a bundleEndpointURL and bundleEndpointProfile to fetch a.example\'s bundle, or a static one in spec.trustDomainBundle or the meshd.io/trust-domain-bundle-file annotation'],
        [13, 'set spec.trustDomainBundle or the meshd.io/trust-domain-bundle-file annotation, not both'],
        [13 + 5 + west.trimEnd().split('\n').length + 5, 'meshd.io/trust-domain-bundle-file is empty'],
      ],
    },
    {
      name: 'unknown fields are errors (a typo must not silently change what is trusted)',
      text: HEAD('x') + yaml`
        spec:
          trustDomain: a.example
          bundleEndpointUrl: https://a.example/
          bundleEndpointProfile: {type: https_web, endpointSpiffeId: x}
      `,
      errors: [
        [7, 'unknown field "bundleEndpointUrl" in spec'],
        [8, 'spec.bundleEndpointProfile needs spec.bundleEndpointURL'],
        [8, 'unknown field "endpointSpiffeId" in spec.bundleEndpointProfile'],
      ],
    },
  ];
  for (const row of rows) {
    const got = errorsOf({ 'cfg/f.yaml': row.text }).map(([, line, message]) => [line, message] as [number, string]);
    const key = (e: [number, string]): string => `${String(e[0]).padStart(4, '0')}${e[1]}`;
    t.same(got.sort((a, b) => (key(a) < key(b) ? -1 : 1)), [...row.errors].sort((a, b) => (key(a) < key(b) ? -1 : 1)), row.name);
    t.same(snapshotOf({ 'cfg/f.yaml': row.text }).federatedTrustDomains, [], `${row.name}: nothing of it is in force`);
  }
});

t.test('meshd\'s own trust domain, an alias, or a trust domain federated twice: refused and not in force', async (t) => {
  const s = snapshotOf({
    'cfg/mesh.yaml': yaml`
      trustDomain: east.example
      trustDomainAliases: [old-east.example]
    `,
    'cfg/a.yaml': HEAD('self') + yaml`
      spec:
        trustDomain: east.example
        bundleEndpointURL: https://evil.example/
        bundleEndpointProfile: {type: https_web}
    ` + '---\n' + HEAD('alias') + yaml`
      spec:
        trustDomain: old-east.example
        bundleEndpointURL: https://evil.example/
        bundleEndpointProfile: {type: https_web}
    ` + '---\n' + HEAD('west') + yaml`
      spec:
        trustDomain: west.example
        bundleEndpointURL: https://west.example/
        bundleEndpointProfile: {type: https_web}
    `,
    'cfg/b.yaml': HEAD('west-again') + yaml`
      spec:
        trustDomain: west.example
        bundleEndpointURL: https://attacker.example/
        bundleEndpointProfile: {type: https_web}
    `,
  });
  t.same(s.messages.map((m) => [m.level, m.source.file, m.source.line, m.resource, m.message]), [
    ['error', 'cfg/a.yaml', 1, 'ClusterFederatedTrustDomain/self', "spec.trustDomain east.example is meshd's own trust domain; only meshd's CA signs for it, so it cannot be federated"],
    ['error', 'cfg/a.yaml', 10, 'ClusterFederatedTrustDomain/alias', "spec.trustDomain old-east.example is one of meshd's trustDomainAliases; identities of an alias are meshd's own, so it cannot be federated"],
    ['error', 'cfg/b.yaml', 1, 'ClusterFederatedTrustDomain/west-again', 'trust domain west.example is already federated by ClusterFederatedTrustDomain/west at cfg/a.yaml:19; this one is ignored'],
  ]);
  t.same(s.federatedTrustDomains.map((f) => [f.meta.name, f.endpoint?.url]), [['west', 'https://west.example/']], 'only the first west, never the own trust domain or its alias');
});

t.test('namespace is ignored with a warning (cluster-scoped); className is ignored with a warning', async (t) => {
  const s = snapshotOf({
    'cfg/f.yaml': yaml`
      apiVersion: spire.spiffe.io/v1alpha1
      kind: ClusterFederatedTrustDomain
      metadata:
        name: west
        namespace: spire
      spec:
        className: spire-system-spire
        trustDomain: west.example
        bundleEndpointURL: https://west.example/
        bundleEndpointProfile: {type: https_web}
    `,
  });
  t.same(s.messages.map((m) => [m.level, m.source.line, m.resource, m.message]), [
    ['warning', 5, 'ClusterFederatedTrustDomain/west', 'ClusterFederatedTrustDomain is cluster-scoped; metadata.namespace is ignored'],
    ['warning', 7, 'ClusterFederatedTrustDomain/west', 'spec.className selects a spire-controller-manager instance; meshd reads every ClusterFederatedTrustDomain and ignores it'],
  ]);
  t.equal(s.federatedTrustDomains.length, 1);
  t.equal(s.federatedTrustDomains[0]!.meta.namespace, '');
});

t.test('only spire.spiffe.io/v1alpha1 is served', async (t) => {
  t.same(errorsOf({ 'cfg/f.yaml': HEAD('x').replace('v1alpha1', 'v1') + 'spec: {trustDomain: a.example}\n' }), [
    ['cfg/f.yaml', 2, 'no matches for kind "ClusterFederatedTrustDomain" in version "spire.spiffe.io/v1" (meshd reads ClusterFederatedTrustDomain as spire.spiffe.io/v1alpha1)'],
  ]);
});

t.test('a broken edit keeps the last good version in force; a deliberate removal removes it; the diff names the trust domain', async (t) => {
  const good = HEAD('west') + yaml`
    spec:
      trustDomain: west.example
      bundleEndpointURL: https://west.example/
      bundleEndpointProfile: {type: https_web}
  `;
  const first = snapshotOf({ 'cfg/f.yaml': good });
  const broken = snapshotOf({ 'cfg/f.yaml': good.replace('https://west.example/', 'http://west.example/') }, first);
  t.same(broken.federatedTrustDomains.map((f) => f.endpoint?.url), ['https://west.example/'], 'the last good version stays');
  t.ok(broken.messages.some((m) => m.level === 'warning' && m.message === 'keeping the last good version of ClusterFederatedTrustDomain/west (loaded from cfg/f.yaml:1) until this document is fixed'));
  t.ok(diffSnapshots(first, broken).empty, 'nothing changed in force');

  const moved = snapshotOf({ 'cfg/f.yaml': good.replace('https://west.example/', 'https://west.example:8443/') }, first);
  const diff = diffSnapshots(first, moved);
  t.same([...diff.federatedTrustDomains], ['west.example']);
  t.notOk(diff.empty, 'a federation change is a config change');
  t.same([...diff.namespaces], [], 'and touches no namespace');

  const removed = snapshotOf({}, moved);
  t.same(removed.federatedTrustDomains, []);
  t.same([...diffSnapshots(moved, removed).federatedTrustDomains], ['west.example']);
});
