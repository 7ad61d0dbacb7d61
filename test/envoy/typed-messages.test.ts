import t from 'tap';
import { packedAs } from '../../src/envoy/any.js';
import { ExtensionName, ExtensionType } from '../../src/envoy/extension-types.js';
import type { ProtoJson } from '../../src/envoy/json-form.js';
import type { Bootstrap, Cluster, Filter, HttpFilter, Listener, PackedAny, Secret, TransportSocket } from '../../src/envoy/messages.js';
import { decodeStrict } from '../../src/envoy/strict-decode.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { envoyRejects } from '../xds/generators/envoy-accepts.js';

/**
 * Envoy's messages are typed (src/envoy/messages.ts): the `@ts-expect-error` lines below are
 * compile errors, and `npm test` type-checks before it runs anything, so if one of them ever
 * compiled (a misspelt field accepted again), tsc would fail on the unused directive.
 */
const listener = (l: Listener): Listener => l;
const filter = (f: Filter): Filter => f;
const socket = (s: TransportSocket): TransportSocket => s;
const bootstrap = (b: ProtoJson<Bootstrap>): ProtoJson<Bootstrap> => b;

t.test('misspelt fields and wrong value types are compile errors, inside Any-packed extensions too', async (t) => {
  const refused = [
    // @ts-expect-error a misspelt field of a resource
    listener({ nmae: '10.0.0.1_80' }),
    // @ts-expect-error a misspelt field of a typed_config: its type URL picks the message
    filter({ name: ExtensionName.TcpProxy, typed_config: { '@type': ExtensionType.TcpProxy, stat_prefx: 'x', cluster: 'c' } }),
    // @ts-expect-error a value of the wrong type in a transport socket's typed_config
    socket({ name: ExtensionName.Tls, typed_config: { '@type': ExtensionType.UpstreamTlsContext, sni: 443 } }),
    // @ts-expect-error a type URL meshd's protos do not define cannot be packed
    socket({ name: ExtensionName.Tls, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContex' } }),
    // @ts-expect-error an enum value Envoy does not define
    listener({ name: 'l', traffic_direction: 'INBOUD' }),
    // @ts-expect-error a bootstrap is proto3 JSON: a Duration is "1s", not {seconds}
    bootstrap({ static_resources: { clusters: [{ name: 'c', connect_timeout: { seconds: 1 } }] } }),
    // @ts-expect-error a misspelt field in a bootstrap's Any-packed extension
    bootstrap({ static_resources: { clusters: [{ name: 'c', transport_socket: { name: 'tls', typed_config: { '@type': ExtensionType.UpstreamTlsContext, snii: 'x' } } }] } }),
  ];
  t.equal(refused.length, 7, 'the refused literals are still plain objects at run time');
});

t.test('messages meshd will build compile, encode and decode strictly: RBAC, SPIFFE validation, TLS origination', async (t) => {
  const rules = {
    action: 'ALLOW' as const,
    policies: {
      'ns[shop]-policy[allow-web]-rule[0]': {
        permissions: [{ destination_port: 8080 }],
        principals: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/shop/sa/web' } } }],
      },
    },
  };
  const httpRbac: HttpFilter = {
    name: 'envoy.filters.http.rbac',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC', rules },
  };
  const networkRbac: Filter = {
    name: 'envoy.filters.network.rbac',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', stat_prefix: 'tcp.', rules },
  };
  const origination: Cluster = {
    name: 'outbound|443||api.example.com',
    type: 'STRICT_DNS',
    connect_timeout: { seconds: 10 },
    transport_socket: {
      name: ExtensionName.Tls,
      typed_config: {
        '@type': ExtensionType.UpstreamTlsContext,
        sni: 'api.example.com',
        common_tls_context: {
          validation_context_sds_secret_config: { name: 'file-root:/etc/ssl/ca.pem', sds_config: { ads: {}, resource_api_version: 'V3' } },
        },
      },
    },
  };
  const federated: Secret = {
    name: 'ROOTCA',
    validation_context: {
      custom_validator_config: {
        name: 'envoy.tls.cert_validator.spiffe',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
          trust_domains: [
            { name: 'cluster.local', trust_bundle: { inline_string: '-----BEGIN CERTIFICATE-----\n...' } },
            { name: 'partner.example', trust_bundle: { inline_string: '-----BEGIN CERTIFICATE-----\n...' } },
          ],
        },
      },
    },
  };
  const listenerWithBoth: Listener = {
    name: '10.0.0.1_8080',
    address: { socket_address: { address: '10.0.0.1', port_value: 8080 } },
    filter_chains: [{
      filters: [
        networkRbac,
        filter({
          name: ExtensionName.HttpConnectionManager,
          typed_config: {
            '@type': ExtensionType.HttpConnectionManager,
            stat_prefix: 'inbound',
            route_config: { name: 'r' },
            http_filters: [httpRbac, { name: ExtensionName.Router, typed_config: { '@type': ExtensionType.Router } }],
          },
        }),
      ],
    }],
  };
  t.same(envoyRejects(TypeUrl.Listener, listenerWithBoth), [], 'HTTP and network RBAC with envoy.config.rbac.v3 policies');
  t.same(envoyRejects(TypeUrl.Cluster, origination), [], 'UpstreamTlsContext for TLS origination');
  t.same(envoyRejects(TypeUrl.Secret, federated), [], 'SPIFFECertValidatorConfig with one trust bundle per trust domain');
});

t.test('packedAs reads an Any as the extension its type URL names, and nothing else', async (t) => {
  const any: PackedAny = { '@type': ExtensionType.TcpProxy, stat_prefix: 's', cluster: 'c' };
  t.equal(packedAs(any, ExtensionType.TcpProxy)?.cluster, 'c');
  t.equal(packedAs(any, ExtensionType.HttpConnectionManager), undefined);
  t.equal(packedAs(undefined, ExtensionType.TcpProxy), undefined);
  t.equal(packedAs(null, ExtensionType.TcpProxy), undefined);
});

t.test('the JSON form type accepts what Envoy reads: a bootstrap written with it decodes strictly', async (t) => {
  const b = bootstrap({
    node: { id: 'sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local', metadata: { LABELS: { app: 'web' }, INSTANCE_IPS: '10.0.0.1' } },
    static_resources: {
      clusters: [{
        name: 'xds-grpc',
        type: 'STATIC',
        connect_timeout: '0.25s',
        load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.100', port_value: 15012 } } }, load_balancing_weight: 1 }] }] },
        typed_extension_protocol_options: {
          [ExtensionName.HttpProtocolOptions]: { '@type': ExtensionType.HttpProtocolOptions, explicit_http_config: { http2_protocol_options: { connection_keepalive: { interval: '30s', timeout: '10s' } } } },
        },
      }],
    },
    layered_runtime: { layers: [{ name: 'global config', static_layer: { 'overload.global_downstream_max_connections': 2147483647 } }] },
  });
  const decoded = decodeStrict('envoy.config.bootstrap.v3.Bootstrap', b);
  t.same(decoded.valid ? [] : decoded.errors, []);
});
