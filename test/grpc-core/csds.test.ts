import t from 'tap';
import { encodeMessage } from '../../src/envoy/protos.js';
import { decodeCsds, notAcked } from './helpers/csds.js';

/**
 * The CSDS decoder the C-core tests rely on, on dumps built from Envoy's protos: each status,
 * the NACK's text and rejected version, and both shapes gRPC has dumped (a bare ClientConfig in
 * C-core 1.51, a ClientStatusResponse in later releases).
 */
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

const clientConfig = {
  node: { id: 'sidecar~127.0.0.1~caller.grpc-client~grpc-client.svc.cluster.local' },
  generic_xds_configs: [
    { type_url: LDS, name: 'svc:7070', version_info: 'v1', client_status: 'ACKED', last_updated: { seconds: 1_700_000_000, nanos: 250_000_000 } },
    {
      type_url: CDS, name: 'outbound|7070||svc', version_info: 'v1', client_status: 'NACKED',
      error_state: { details: 'field:lb_policy error:LB policy is not supported', version_info: 'v2' },
    },
    { type_url: LDS, name: 'xds.istio.io/grpc/lds/inbound/127.0.0.1:1', client_status: 'DOES_NOT_EXIST' },
    { type_url: CDS, name: 'outbound|8080||other', client_status: 'REQUESTED' },
  ],
};

const expected = [
  { typeUrl: CDS, name: 'outbound|7070||svc', status: 'NACKED', version: 'v1', error: 'field:lb_policy error:LB policy is not supported', rejectedVersion: 'v2' },
  { typeUrl: CDS, name: 'outbound|8080||other', status: 'REQUESTED', version: '' },
  { typeUrl: LDS, name: 'svc:7070', status: 'ACKED', version: 'v1', updatedAtMs: 1_700_000_000_250 },
  { typeUrl: LDS, name: 'xds.istio.io/grpc/lds/inbound/127.0.0.1:1', status: 'DOES_NOT_EXIST', version: '' },
];

t.test('a ClientConfig dump (C-core 1.51): every resource with its status, NACK text and versions', async (t) => {
  const resources = decodeCsds(encodeMessage('type.googleapis.com/envoy.service.status.v3.ClientConfig', clientConfig));
  t.same(resources, expected);
  t.same(notAcked(resources).map((r) => r.status), ['NACKED', 'REQUESTED', 'DOES_NOT_EXIST']);
});

t.test('a ClientStatusResponse dump (later C-cores): the same, across its client configs', async (t) => {
  const bytes = encodeMessage('type.googleapis.com/envoy.service.status.v3.ClientStatusResponse', { config: [clientConfig, clientConfig] });
  t.same(decodeCsds(bytes), expected.flatMap((r) => [r, r]));
});

t.test('bytes that are neither shape are refused, not read as an empty dump', async (t) => {
  t.throws(() => decodeCsds(Buffer.from('not a protobuf message at all')), /not a CSDS dump/);
});

t.test('an empty dump (no XdsClient yet) holds nothing', async (t) => {
  t.same(decodeCsds(new Uint8Array()), []);
});
