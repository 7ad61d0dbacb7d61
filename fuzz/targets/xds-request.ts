import * as fc from 'fast-check';
import { decodeDeltaRequest, decodeSotwRequest, DiscoveryWireError } from '../../src/xds/core/wire.js';
import { RequestLimitError } from '../../src/xds/core/node-limits.js';
import { lookupType } from '../../src/envoy/protos.js';
import { ContractViolation, expectedError, type FuzzTarget } from '../target.js';

const SOTW = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const DELTA = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const node = { id: 'sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local', cluster: 'web.shop', user_agent_name: 'envoy', user_agent_version: '1.30.1', metadata: { fields: { NAMESPACE: { string_value: 'shop' }, LABELS: { struct_value: { fields: { app: { string_value: 'web' } } } }, N: { number_value: 3 }, B: { bool_value: true }, L: { list_value: { values: [{ string_value: 'x' }, { null_value: 0 }] } } } } };
const enc = (t: typeof SOTW, o: Record<string, unknown>): Uint8Array => t.encode(t.fromObject(o)).finish();

/** The DiscoveryRequest and DeltaDiscoveryRequest readers (src/xds/core/wire.ts): bytes from any client. */
export const xdsRequest: FuzzTarget = {
  name: 'xds-request',
  about: 'decodeSotwRequest / decodeDeltaRequest: a value, DiscoveryWireError or RequestLimitError (a node over meshd\'s bounds); decode(encode(x)) = x',
  seeds: () => [
    enc(SOTW, { node, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: ['a', 'b'], version_info: 'v1', response_nonce: 'n1' }),
    enc(SOTW, { type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', resource_names: ['default', 'ROOTCA'], error_detail: { code: 3, message: 'rejected' } }),
    enc(DELTA, { node, type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener', resource_names_subscribe: ['x'], resource_names_unsubscribe: ['y'], initial_resource_versions: { a: '1', b: '2' }, response_nonce: 'n' }),
    enc(DELTA, { error_detail: { code: 13, message: 'nack' }, response_nonce: 'z' }),
  ],
  check(input) {
    let outcome = '';
    for (const decode of [decodeSotwRequest, decodeDeltaRequest]) {
      try {
        decode(input);
        outcome += 'ok ';
      } catch (err) {
        outcome += `${expectedError(err, DiscoveryWireError, RequestLimitError)} `;
      }
    }
    return outcome.trim();
  },
  property: {
    arbitrary: fc.record({
      version: fc.string(), names: fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 5 }), typeUrl: fc.string(), nonce: fc.string(),
      id: fc.string(), cluster: fc.string(), code: fc.integer({ min: 0, max: 16 }), message: fc.string({ unit: 'grapheme' }),
      versions: fc.dictionary(fc.string(), fc.string(), { maxKeys: 4 }),
    }),
    check(value) {
      const v = value as { version: string; names: string[]; typeUrl: string; nonce: string; id: string; cluster: string; code: number; message: string; versions: Record<string, string> };
      const s = decodeSotwRequest(enc(SOTW, { version_info: v.version, resource_names: v.names, type_url: v.typeUrl, response_nonce: v.nonce, node: { id: v.id, cluster: v.cluster }, error_detail: { code: v.code, message: v.message } }));
      const want = { typeUrl: v.typeUrl, versionInfo: v.version, resourceNames: v.names, responseNonce: v.nonce, nodeId: v.id, cluster: v.cluster, code: v.code, message: v.message };
      const got = { typeUrl: s.typeUrl, versionInfo: s.versionInfo, resourceNames: s.resourceNames, responseNonce: s.responseNonce, nodeId: s.node?.id, cluster: s.node?.cluster, code: s.errorDetail?.code, message: s.errorDetail?.message };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new ContractViolation(`sotw round trip: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
      const d = decodeDeltaRequest(enc(DELTA, { type_url: v.typeUrl, resource_names_subscribe: v.names, resource_names_unsubscribe: v.names, initial_resource_versions: v.versions, response_nonce: v.nonce }));
      const dWant = { typeUrl: v.typeUrl, subscribe: v.names, unsubscribe: v.names, versions: v.versions, nonce: v.nonce };
      const dGot = { typeUrl: d.typeUrl, subscribe: d.subscribe, unsubscribe: d.unsubscribe, versions: d.initialResourceVersions, nonce: d.responseNonce };
      if (JSON.stringify(dGot) !== JSON.stringify(dWant)) throw new ContractViolation(`delta round trip: ${JSON.stringify(dGot)} != ${JSON.stringify(dWant)}`);
    },
  },
};
