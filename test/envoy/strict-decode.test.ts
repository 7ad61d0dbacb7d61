import t from 'tap';
import { parse } from 'yaml';
import { decodeStrict, decodeStrictAny, decodeStrictBytes } from '../../src/envoy/strict-decode.js';
import { encodeAny, encodeMessage, lookupType } from '../../src/envoy/protos.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** SDS over ADS, as Istio writes it for `default` and `ROOTCA`. */
const sds = (name: string): unknown => ({ name, sds_config: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' } });

/** An inbound listener for a PERMISSIVE HTTP port, written as Envoy YAML (proto3-JSON). */
const LISTENER_YAML = `
name: inbound|8080
address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
listener_filters:
- name: envoy.filters.listener.tls_inspector
  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
listener_filters_timeout: 5s
continue_on_listener_filters_timeout: true
filter_chains:
- name: inbound|8080|mtls
  filter_chain_match: {transport_protocol: tls, application_protocols: [h2, http/1.1]}
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": ${TLS}.DownstreamTlsContext
      require_client_certificate: true
      common_tls_context:
        alpn_protocols: [h2, http/1.1]
        tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}
        tls_certificate_sds_secret_configs:
        - name: default
          sds_config: {ads: {}, resource_api_version: V3, initial_fetch_timeout: 0s}
        combined_validation_context:
          default_validation_context:
            match_subject_alt_names: [{prefix: "spiffe://cluster.local/"}]
          validation_context_sds_secret_config:
            name: ROOTCA
            sds_config: {ads: {}, resource_api_version: V3, initial_fetch_timeout: 0s}
  filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": ${HCM}
      stat_prefix: inbound_8080
      codec_type: AUTO
      forward_client_cert_details: APPEND_FORWARD
      set_current_client_cert_details: {uri: true}
      stream_idle_timeout: 300s
      normalize_path: true
      route_config:
        name: inbound|8080
        virtual_hosts:
        - name: inbound|http|8080
          domains: ["*"]
          routes:
          - match: {prefix: /}
            route: {cluster: inbound|8080||, timeout: 0s}
      http_filters:
      - name: envoy.filters.http.router
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
- name: inbound|8080|plaintext
  filter_chain_match: {transport_protocol: raw_buffer}
  filters:
  - name: envoy.filters.network.tcp_proxy
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
      stat_prefix: inbound_8080
      cluster: inbound|8080||
      idle_timeout: 3600s
`;

const listener = (): Record<string, any> => parse(LISTENER_YAML);

/** An outbound cluster with Istio's auto-mTLS transport_socket_matches, in lowerCamel JSON. */
const cluster = (): Record<string, any> => ({
  name: 'outbound|8080||api.payments.svc.cluster.local',
  type: 'EDS',
  edsClusterConfig: { serviceName: 'outbound|8080||api.payments.svc.cluster.local', edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
  connectTimeout: '10s',
  lbPolicy: 'LEAST_REQUEST',
  commonLbConfig: { healthyPanicThreshold: { value: 0 } },
  circuitBreakers: { thresholds: [{ maxConnections: 4294967295, maxRetries: 4294967295 }] },
  metadata: { filterMetadata: { istio: { services: [{ host: 'api.payments.svc.cluster.local', name: 'api', namespace: 'payments' }] } } },
  transportSocketMatches: [
    {
      name: 'tlsMode-istio',
      match: { tlsMode: 'istio' },
      transportSocket: {
        name: 'envoy.transport_sockets.tls',
        typedConfig: {
          '@type': `${TLS}.UpstreamTlsContext`,
          sni: 'outbound_.8080_._.api.payments.svc.cluster.local',
          commonTlsContext: {
            alpnProtocols: ['istio', 'h2'],
            tlsCertificateSdsSecretConfigs: [sds('default')],
            combinedValidationContext: {
              defaultValidationContext: { matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/payments/sa/api' } }] },
              validationContextSdsSecretConfig: sds('ROOTCA'),
            },
          },
        },
      },
    },
    { name: 'tlsMode-disabled', match: {}, transportSocket: { name: 'envoy.transport_sockets.raw_buffer', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } },
  ],
});

const loadAssignment = (): Record<string, any> => ({
  cluster_name: 'outbound|8080||api.payments.svc.cluster.local',
  endpoints: [{
    locality: { region: 'eu', zone: 'eu-1' },
    lb_endpoints: [{
      endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 8080 } } },
      health_status: 'HEALTHY',
      metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' }, istio: { workload: 'api-1;payments;api;;cluster.local' } } },
      load_balancing_weight: 1,
    }],
  }],
});

const secret = (): Record<string, any> => ({
  name: 'ROOTCA',
  validation_context: { trusted_ca: { inline_bytes: Buffer.from('-----BEGIN CERTIFICATE-----\n...\n').toString('base64') } },
});

const routeConfig = (): Record<string, any> => ({
  name: '8080',
  virtual_hosts: [{ name: 'api.payments.svc.cluster.local:8080', domains: ['api.payments.svc.cluster.local', 'api.payments:8080'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|8080||api.payments.svc.cluster.local', timeout: '0s', retry_policy: { retry_on: 'connect-failure,refused-stream', num_retries: 2 } } }] }],
  validate_clusters: false,
});

t.test('realistic Envoy resources decode strictly', async (t) => {
  const rows: Array<[string, string, Record<string, any>]> = [
    ['listener with tls_inspector, SDS DownstreamTlsContext, HCM with router and tcp_proxy (YAML)', TypeUrl.Listener, listener()],
    ['cluster with auto-mTLS transport_socket_matches (lowerCamel JSON)', TypeUrl.Cluster, cluster()],
    ['ClusterLoadAssignment with tlsMode metadata', TypeUrl.Endpoint, loadAssignment()],
    ['Secret with an inline trust bundle', TypeUrl.Secret, secret()],
    ['RouteConfiguration with a retry policy', TypeUrl.Route, routeConfig()],
  ];
  for (const [name, typeUrl, json] of rows) {
    const r = decodeStrict(typeUrl, json);
    t.same(r.valid ? [] : r.errors, [], name);
    if (!r.valid) continue;
    // What was decoded is what goes on the wire: the bytes decode strictly too.
    const again = decodeStrictBytes(typeUrl, r.bytes);
    t.ok(again.valid, `${name}: its bytes decode strictly`);
  }
});

t.test('proto3-JSON forms are mapped to what protobufjs encodes', async (t) => {
  const r = decodeStrict(TypeUrl.Listener, listener());
  if (!r.valid) throw new Error(r.errors.join('\n'));
  const obj = lookupType('envoy.config.listener.v3.Listener').toObject(r.message, { json: true, longs: String, enums: String });
  t.same(obj['listener_filters_timeout'], { seconds: '5', nanos: 0 }, 'Duration "5s"');
  t.same(obj['continue_on_listener_filters_timeout'], true);
  const tls = obj['filter_chains'][0]['transport_socket']['typed_config'];
  t.equal(tls['@type'], `${TLS}.DownstreamTlsContext`, 'Any keeps its @type');
  t.same(tls['require_client_certificate'], { value: true }, 'bare bool → BoolValue');
  t.equal(tls['common_tls_context']['tls_params']['tls_minimum_protocol_version'], 'TLSv1_2');
  const c = decodeStrict(TypeUrl.Cluster, cluster());
  if (!c.valid) throw new Error(c.errors.join('\n'));
  const cobj = lookupType('envoy.config.cluster.v3.Cluster').toObject(c.message, { json: true, longs: String, enums: String });
  t.same(cobj['common_lb_config'], { healthy_panic_threshold: { value: 0 } }, 'Percent with a double');
  t.same(cobj['metadata']['filter_metadata']['istio']['fields']['services']['listValue']['values'][0]['structValue']['fields']['host'], { stringValue: 'api.payments.svc.cluster.local' }, 'Struct from plain JSON');
  t.equal(cobj['circuit_breakers']['thresholds'][0]['max_connections']['value'], 4294967295, 'UInt32Value at its maximum');
});

/** Each row: a mutation of a valid config and the exact error expected (path: message). */
t.test('each kind of invalid config is reported with its path', async (t) => {
  const TLS_PATH = 'filter_chains[0].transport_socket.typed_config';
  const rows: Array<{ name: string; typeUrl: string; make: () => unknown; expect: string[] }> = [
    {
      name: 'unknown field deep inside an Any',
      typeUrl: TypeUrl.Listener,
      make: () => { const l = listener(); l['filter_chains'][0].transport_socket.typed_config.common_tls_context.tls_params.min_version = 'TLSv1_2'; return l; },
      expect: [`${TLS_PATH}.common_tls_context.tls_params.min_version: unknown field "min_version" in envoy.extensions.transport_sockets.tls.v3.TlsParameters`],
    },
    {
      name: 'unknown field inside an Any inside an Any (HCM → router)',
      typeUrl: TypeUrl.Listener,
      make: () => { const l = listener(); l['filter_chains'][0].filters[0].typed_config.http_filters[0].typed_config.dynamic_stat = true; return l; },
      expect: ['filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.dynamic_stat: unknown field "dynamic_stat" in envoy.extensions.filters.http.router.v3.Router'],
    },
    {
      name: 'unknown @type',
      typeUrl: TypeUrl.Listener,
      make: () => { const l = listener(); l['listener_filters'][0].typed_config['@type'] = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TLSInspector'; return l; },
      expect: ['listener_filters[0].typed_config["@type"]: unknown @type "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TLSInspector" (not a message type meshd\'s Envoy protos define)'],
    },
    {
      name: 'bad enum value (the Bootstrap path of a static cluster)',
      typeUrl: 'envoy.config.bootstrap.v3.Bootstrap',
      make: () => {
        const c = cluster();
        c['transportSocketMatches'][0].transportSocket.typedConfig.commonTlsContext.tlsParams = { tls_minimum_protocol_version: 'TLS1_2' };
        return { static_resources: { clusters: [{ ...c, transport_socket: c['transportSocketMatches'][0].transportSocket, transportSocketMatches: undefined }] } };
      },
      expect: ['static_resources.clusters[0].transport_socket.typedConfig.commonTlsContext.tlsParams.tls_minimum_protocol_version: unknown enum value "TLS1_2" (envoy.extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol has TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3)'],
    },
    {
      name: 'missing required: SdsSecretConfig.name (string.min_len 1)',
      typeUrl: TypeUrl.Listener,
      make: () => { const l = listener(); delete l['filter_chains'][0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name; return l; },
      expect: [`${TLS_PATH}.common_tls_context.tls_certificate_sds_secret_configs[0].name: value length must be at least 1 characters (string.min_len)`],
    },
    {
      name: 'missing required oneof: ConfigSource with no source (validate.required)',
      typeUrl: TypeUrl.Cluster,
      make: () => { const c = cluster(); c['edsClusterConfig'].edsConfig = { resourceApiVersion: 'V3' }; return c; },
      expect: ['eds_cluster_config.eds_config: one of path, path_config_source, api_config_source, ads, self is required (oneof config_source_specifier, validate.required)'],
    },
    {
      name: 'missing required message (message.required): CombinedValidationContext without its default',
      typeUrl: TypeUrl.Listener,
      make: () => { const l = listener(); delete l['filter_chains'][0].transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context; return l; },
      expect: [`${TLS_PATH}.common_tls_context.combined_validation_context.default_validation_context: value is required`],
    },
    {
      name: 'missing required message (message.required): a route without match',
      typeUrl: TypeUrl.Route,
      make: () => { const r = routeConfig(); delete r['virtual_hosts'][0].routes[0].match; return r; },
      expect: ['virtual_hosts[0].routes[0].match: value is required'],
    },
    {
      name: 'a oneof member that is set is validated (empty safe_regex.regex)',
      typeUrl: TypeUrl.Route,
      make: () => { const r = routeConfig(); r['virtual_hosts'][0].routes[0].match = { safe_regex: { regex: '' } }; return r; },
      expect: ['virtual_hosts[0].routes[0].match.safe_regex.regex: value length must be at least 1 characters (string.min_len)'],
    },
    {
      name: 'two members of a oneof',
      typeUrl: TypeUrl.Cluster,
      make: () => ({ ...cluster(), clusterType: { name: 'envoy.clusters.aggregate' } }),
      expect: ['(root): only one of type, cluster_type may be set (oneof cluster_discovery_type)'],
    },
    {
      name: 'snake and camel names for the same field',
      typeUrl: TypeUrl.Cluster,
      make: () => ({ ...cluster(), connect_timeout: '1s' }),
      expect: ['connect_timeout: field connect_timeout given twice (as "connectTimeout" and "connect_timeout")'],
    },
    {
      name: 'wrong type: a string for a uint32',
      typeUrl: TypeUrl.Endpoint,
      make: () => { const e = loadAssignment(); e['endpoints'][0].lb_endpoints[0].endpoint.address.socket_address.port_value = 'http'; return e; },
      expect: ['endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: expected a uint32, got string "http"'],
    },
    {
      name: 'wrong type: an object where a list belongs',
      typeUrl: TypeUrl.Route,
      make: () => { const r = routeConfig(); r['virtual_hosts'][0].domains = { a: 1 }; return r; },
      expect: ['virtual_hosts[0].domains: expected a list, got an object'],
    },
    {
      name: 'BoolValue written as an object instead of the bare value',
      typeUrl: TypeUrl.Listener,
      make: () => { const l = listener(); l['filter_chains'][0].transport_socket.typed_config.require_client_certificate = { value: true }; return l; },
      expect: [`${TLS_PATH}.require_client_certificate: google.protobuf.BoolValue is written as its bare value in proto3 JSON (e.g. true), got an object`],
    },
    {
      name: 'bad duration string',
      typeUrl: TypeUrl.Cluster,
      make: () => ({ ...cluster(), connectTimeout: '10 seconds' }),
      expect: ['connectTimeout: invalid duration "10 seconds": proto3 JSON wants seconds with an "s" suffix, such as "5s" or "0.250s"'],
    },
    {
      name: 'Duration written as {seconds} (protobufjs form, not proto3 JSON)',
      typeUrl: TypeUrl.Cluster,
      make: () => ({ ...cluster(), connectTimeout: { seconds: 10 } }),
      expect: ['connectTimeout: expected a duration string such as "5s" or "0.250s", got an object'],
    },
    {
      name: 'duration constraint: connect_timeout must be > 0 (duration.gt)',
      typeUrl: TypeUrl.Cluster,
      make: () => ({ ...cluster(), connectTimeout: '0s' }),
      expect: ['connect_timeout: value must be greater than 0s (duration.gt)'],
    },
    {
      name: 'uint32 range constraint: port above 65535 (uint32.lte)',
      typeUrl: TypeUrl.Endpoint,
      make: () => { const e = loadAssignment(); e['endpoints'][0].lb_endpoints[0].endpoint.address.socket_address.port_value = 70000; return e; },
      expect: ['endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: value must be less than or equal to 65535 (uint32.lte)'],
    },
    {
      name: 'integer out of the field type range',
      typeUrl: TypeUrl.Cluster,
      make: () => { const c = cluster(); c['circuitBreakers'].thresholds[0].maxConnections = 4294967296; return c; },
      expect: ['circuitBreakers.thresholds[0].maxConnections: 4294967296 is out of range for uint32'],
    },
    {
      name: 'enum number not defined (enum.defined_only)',
      typeUrl: TypeUrl.Cluster,
      make: () => ({ ...cluster(), lbPolicy: 42 }),
      expect: ['lb_policy: value 42 must be one of the defined enum values of envoy.config.cluster.v3.Cluster.LbPolicy (enum.defined_only)'],
    },
    {
      name: 'empty list where one item is the minimum (repeated.min_items)',
      typeUrl: TypeUrl.Route,
      make: () => { const r = routeConfig(); r['virtual_hosts'][0].domains = []; return r; },
      expect: ['virtual_hosts[0].domains: value must contain at least 1 item(s) (repeated.min_items)'],
    },
    {
      name: 'a header name with a space (well_known_regex HTTP_HEADER_NAME)',
      typeUrl: TypeUrl.Route,
      make: () => { const r = routeConfig(); r['request_headers_to_add'] = [{ header: { key: 'x\nbad', value: 'v' } }]; return r; },
      expect: ['request_headers_to_add[0].header.key: value does not match regex pattern for an HTTP header name (string.well_known_regex)'],
    },
    {
      name: 'bytes that are not base64',
      typeUrl: TypeUrl.Secret,
      make: () => ({ name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: '-----BEGIN CERTIFICATE-----' } } }),
      expect: ['validation_context.trusted_ca.inline_bytes: bytes must be base64 in proto3 JSON'],
    },
    {
      name: 'a list where the message belongs (root not an object)',
      typeUrl: TypeUrl.Secret,
      make: () => [secret()],
      expect: ['(root): expected an object (envoy.extensions.transport_sockets.tls.v3.Secret), got a list'],
    },
  ];
  for (const row of rows) {
    const r = decodeStrict(row.typeUrl, row.make());
    t.same(r.valid ? [] : r.errors, row.expect, row.name);
  }
});

t.test('deprecated fields decode with a warning, as Envoy accepts them', async (t) => {
  const c = cluster();
  const r = decodeStrict(TypeUrl.Cluster, { ...c, http2ProtocolOptions: {} });
  t.ok(r.valid);
  t.same(r.warnings, ['http2ProtocolOptions: deprecated field envoy.config.cluster.v3.Cluster.http2_protocol_options']);
});

t.test('an unknown message type is refused', async (t) => {
  const r = decodeStrict('envoy.config.listener.v3.Listenr', {});
  t.same(r.valid ? [] : r.errors, ['(root): unknown message type "envoy.config.listener.v3.Listenr"']);
});

t.test('wire bytes: a generated Resource body (Any) decodes strictly', async (t) => {
  const l = decodeStrict(TypeUrl.Listener, listener());
  if (!l.valid) throw new Error(l.errors.join('\n'));
  const any = lookupType('google.protobuf.Any');
  const body = any.encode(any.create({ type_url: TypeUrl.Listener, value: l.bytes })).finish();
  const r = decodeStrictAny(body);
  t.ok(r.valid, 'Resource body decodes');
  if (r.valid) t.equal(r.message.$type.fullName, '.envoy.config.listener.v3.Listener', 'message is the payload');
  t.ok(decodeStrictBytes('type.googleapis.com/google.protobuf.Any', body).valid, 'same through decodeStrictBytes with the Any type');
  // protos.ts helpers give the same bytes path the generators use.
  const sec = encodeAny(TypeUrl.Secret, { name: 'default', tls_certificate: { certificate_chain: { inline_string: 'x' }, private_key: { inline_string: 'y' } } });
  t.ok(decodeStrictAny(sec).valid, 'encodeAny output decodes');
});

/** Appends a field to an encoded message: tag (id, wire type 0) + varint 1. */
function withExtraVarint(bytes: Uint8Array, id: number): Uint8Array {
  const tag = (id << 3) | 0;
  const out = [...bytes];
  let v = tag;
  while (v > 0x7f) { out.push((v & 0x7f) | 0x80); v >>>= 7; }
  out.push(v, 1);
  return Uint8Array.from(out);
}

t.test('wire bytes: what protobufjs would skip silently is an error', async (t) => {
  const tlsType = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
  const tlsBytes = encodeMessage(tlsType, { require_client_certificate: { value: true } });
  const tamperedTls = withExtraVarint(tlsBytes, 999);
  const listenerWith = (tls: Uint8Array): Uint8Array => encodeMessage(TypeUrl.Listener, {
    name: 'l',
    filter_chains: [{ transport_socket: { name: 'tls', typed_config: { type_url: `type.googleapis.com/${tlsType}`, value: tls } }, filters: [] }],
  });
  t.ok(decodeStrictBytes(TypeUrl.Listener, listenerWith(tlsBytes)).valid, 'untampered listener decodes');
  const rows: Array<[string, Uint8Array, string]> = [
    ['unknown field number inside an Any', listenerWith(tamperedTls), `filter_chains[0].transport_socket.typed_config: unknown field number 999 (wire type 0) in ${tlsType}`],
    ['unknown field number at the top', withExtraVarint(listenerWith(tlsBytes), 777), '(root): unknown field number 777 (wire type 0) in envoy.config.listener.v3.Listener'],
    ['wire type that does not fit (varint for the string name)', Uint8Array.from([0x08, 0x01]), 'name: wire type 0 does not fit field name (string, wire type 2)'],
    ['truncated bytes', listenerWith(tlsBytes).slice(0, 10), '(root): malformed protobuf: index out of range: 5 + 99 > 10'],
  ];
  for (const [name, bytes, expected] of rows) {
    const r = decodeStrictBytes(TypeUrl.Listener, bytes);
    t.same(r.valid ? [] : r.errors, [expected], name);
  }
  const unknownAny = encodeMessage(TypeUrl.Listener, { name: 'l', listener_filters: [{ name: 'x', typed_config: { type_url: 'type.googleapis.com/acme.Inspector', value: new Uint8Array(0) } }] });
  const r = decodeStrictBytes(TypeUrl.Listener, unknownAny);
  t.same(r.valid ? [] : r.errors, ['listener_filters[0].typed_config: unknown @type "type.googleapis.com/acme.Inspector" (not a message type meshd\'s Envoy protos define)'], 'unknown Any type');
  const envelope = withExtraVarint(encodeAny(TypeUrl.Secret, { name: 'default' }), 3);
  const e = decodeStrictAny(envelope);
  t.same(e.valid ? [] : e.errors, ['(root): unknown field number 3 (wire type 0) in google.protobuf.Any'], 'unknown field in the Any envelope itself');
  const noName = encodeAny(TypeUrl.Cluster, { connect_timeout: { seconds: 1 } });
  const s = decodeStrictAny(noName);
  t.same(s.valid ? [] : s.errors, ['name: value length must be at least 1 characters (string.min_len)'], 'PGV rules run on decoded bytes too');
});
