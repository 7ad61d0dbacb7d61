import type { MeshSnapshot, WorkloadEntry } from '../config/model.js';
import type { EffectiveMode } from '../mesh/peer-authentication.js';
import { TRANSPORT_SOCKET_MATCH_KEY } from '../xds/generators/endpoints.js';
import { packedAs } from '../envoy/any.js';
import { ExtensionName, ExtensionType } from '../envoy/extension-types.js';
import type { Cluster, CommonTlsContext, FilterChain, LbEndpoint, Listener, Struct } from '../envoy/messages.js';
import { indexFor } from '../mesh/mesh-index.js';
import { serviceAccountOf, workloadSpiffeId } from '../mesh/spiffe-identity.js';
import { proxyConfigFromIndex, type ProxyConfig } from '../xds/generators/proxy-config.js';
import { detectedFacts, selectFilterChain, type MatchStep } from './filter-chain-match.js';
import { authorizeOnChain, type AuthorizationVerdict, type CheckRequest } from './authorize.js';

/**
 * `meshd check`'s engine: what one connection gets, found by walking the Envoy config meshd
 * generates (buildProxyConfig) the way Envoy would, not by re-deriving policy:
 *
 * 1. client side: a mesh client's sidecar picks the outbound cluster that reaches the target
 *    endpoint, then the transport socket its transport_socket_matches select for that
 *    endpoint's metadata (auto mTLS); a client outside the mesh sends plaintext;
 * 2. server side: the inbound listener on the workload's address and port, the transport
 *    protocol its listener filters detect, then Envoy's filter chain selection;
 * 3. the TLS handshake on a terminating chain: client certificate required and checked against
 *    the trust-domain prefixes, server certificate checked against the client's exact SANs;
 * 4. on an established connection, the chain's RBAC filters over the described request
 *    (authorize.ts).
 *
 * Pure: snapshot in, verdict out.
 */
export type CheckClient = { kind: 'outside' } | { kind: 'workload'; workload: WorkloadEntry };

export type Outcome = 'mtls' | 'plaintext' | 'tls-passthrough' | 'reset' | 'refused' | 'handshake-failure';

export interface CheckResult {
  outcome: Outcome;
  /** One line: what the connection gets. */
  summary: string;
  /** The walk through the config, one line per decision. */
  steps: string[];
  /** The server's effective mode on the port and the policy that decided it. */
  serverMode?: EffectiveMode;
  decidedBy: string;
  /** The client's SPIFFE ID as the server sees it (mTLS only). */
  peerIdentity?: string;
  /** The server's SPIFFE ID as the client verified it (mTLS only). */
  serverIdentity?: string;
  /** Which trust domain's bundle, through which secret, verifies each side's certificate (mTLS only). */
  verifiedBy?: { client: BundleUse; server: BundleUse };
  /** Filter chain that took the connection. */
  chain?: string;
  /** Client side: the outbound cluster and transport socket used. */
  cluster?: string;
  transportSocket?: string;
  /** The chain's AuthorizationPolicy verdict; absent when the connection fails or no policy applies. */
  authorization?: AuthorizationVerdict;
  warnings: string[];
}

/** The bundle a TLS context checks a peer with: the SDS secret it names and the trust domain whose roots decide. */
export interface BundleUse {
  secret: string;
  trustDomain: string;
  /** `trusted_ca`: ROOTCA's roots; `spiffe-validator`: ALL, the entry of the peer's trust domain alone. */
  validator: 'trusted_ca' | 'spiffe-validator';
}

function bundleUse(ctx: TlsContext, peerId: string): BundleUse {
  const secret = ctx.common_tls_context?.combined_validation_context?.validation_context_sds_secret_config?.name ?? '(none)';
  const trustDomain = /^spiffe:\/\/([^/]+)/.exec(peerId)?.[1] ?? '(none)';
  return { secret, trustDomain, validator: secret === 'ROOTCA' ? 'trusted_ca' : 'spiffe-validator' };
}

function describeUse(u: BundleUse): string {
  return u.validator === 'trusted_ca'
    ? `${u.trustDomain}'s bundle (${u.secret}, trusted_ca)`
    : `${u.trustDomain}'s bundle (${u.secret}: the SPIFFE validator's entry for ${u.trustDomain} only)`;
}

interface ClientHello {
  tls: boolean;
  sni?: string;
  alpn: string[];
  /** SPIFFE ID of the client certificate presented, if any. */
  certificate?: string;
  /** Exact SANs the client accepts from the server; empty = any from ROOTCA. */
  acceptsServer: string[];
  /** The client's TLS context, to tell which bundle it verifies the server with. */
  context?: TlsContext;
  how: string;
}

const DEFAULT_DECIDER = 'no PeerAuthentication applies (default PERMISSIVE)';

function inboundListenerAt(config: ProxyConfig, address: string, port: number): Listener | undefined {
  return config.listeners.find((l) =>
    l.traffic_direction === 'INBOUND' && l.address?.socket_address?.address === address && l.address.socket_address.port_value === port);
}

function lbEndpoints(cluster: Cluster, config: ProxyConfig): LbEndpoint[] {
  const cla = cluster.load_assignment ?? config.endpoints.find((e) => e.cluster_name === cluster.name);
  return cla === undefined ? [] : (cla.endpoints ?? []).flatMap((l) => l.lb_endpoints ?? []);
}

function structMatches(match: Struct | null | undefined, metadata: Struct | null | undefined): boolean {
  if (match?.fields === undefined) return true;
  return Object.entries(match.fields).every(([k, v]) => metadata?.fields?.[k]?.stringValue === v.stringValue);
}

/** An Upstream- or DownstreamTlsContext. */
interface TlsContext {
  common_tls_context?: CommonTlsContext | null;
}

function sans(ctx: TlsContext, kind: 'exact' | 'prefix'): string[] {
  return (ctx.common_tls_context?.combined_validation_context?.default_validation_context?.match_typed_subject_alt_names ?? [])
    .map((m) => m.matcher?.[kind])
    .filter((v): v is string => v !== undefined);
}

function alpnOf(ctx: TlsContext): string[] {
  return [...(ctx.common_tls_context?.alpn_protocols ?? [])];
}

/** The app's outbound listener that leads to `clusterName`, if the sidecar opened one. */
function outboundListenerFor(config: ProxyConfig, clusterName: string): Listener | undefined {
  for (const l of config.listeners) {
    if (l.traffic_direction !== 'OUTBOUND') continue;
    for (const f of (l.filter_chains ?? []).flatMap((c) => c.filters ?? [])) {
      if (f.name === ExtensionName.TcpProxy && packedAs(f.typed_config, ExtensionType.TcpProxy)?.cluster === clusterName) return l;
      if (f.name === ExtensionName.HttpConnectionManager) {
        const routeName = packedAs(f.typed_config, ExtensionType.HttpConnectionManager)?.rds?.route_config_name;
        const route = config.routes.find((r) => r.name === routeName);
        if ((route?.virtual_hosts ?? []).some((vh) => (vh.routes ?? []).some((r) => r.route?.cluster === clusterName))) return l;
      }
    }
  }
  return undefined;
}

function clientHello(snapshot: MeshSnapshot, client: CheckClient, target: WorkloadEntry, port: number, steps: string[], result: Partial<CheckResult>): ClientHello {
  if (client.kind === 'outside') {
    steps.push('client: outside the mesh, so plaintext with no client certificate');
    return { tls: false, alpn: [], acceptsServer: [], how: 'plaintext from outside the mesh' };
  }
  const index = indexFor(snapshot);
  const w = client.workload;
  const config = proxyConfigFromIndex(index, w);
  const me = workloadSpiffeId(snapshot.mesh.trustDomain, w.meta.namespace, serviceAccountOf(w.spec.serviceAccount));
  for (const cluster of config.clusters) {
    if (cluster.name?.startsWith('outbound|') !== true) continue;
    const ep = lbEndpoints(cluster, config).find((e) =>
      e.endpoint?.address?.socket_address?.address === target.spec.address && e.endpoint.address.socket_address.port_value === port);
    if (ep === undefined) continue;
    result.cluster = cluster.name;
    const listener = outboundListenerFor(config, cluster.name);
    steps.push(listener !== undefined
      ? `client: the app connects to its sidecar's outbound listener ${listener.name}, which leads to cluster ${cluster.name}`
      : `client: cluster ${cluster.name} reaches the endpoint, but the sidecar opens no outbound listener for it (see warnings)`);
    const metadata = ep.metadata?.filter_metadata?.[TRANSPORT_SOCKET_MATCH_KEY];
    let socket = cluster.transport_socket;
    let socketName = 'plain transport_socket';
    if (cluster.transport_socket_matches !== undefined) {
      const m = cluster.transport_socket_matches.find((x) => structMatches(x.match, metadata));
      socket = m?.transport_socket;
      socketName = m?.name ?? 'none';
      steps.push(`client: endpoint ${target.spec.address}:${port} metadata tlsMode=${metadata?.fields?.tlsMode?.stringValue ?? '(none)'} selects transport socket ${socketName} (auto mTLS)`);
    } else if (socket !== undefined) {
      steps.push(`client: cluster ${cluster.name} has one transport socket for every endpoint (a DestinationRule's tls replaces auto mTLS)`);
    } else {
      steps.push(`client: cluster ${cluster.name} has no auto mTLS (transport_socket_matches absent)`);
    }
    result.transportSocket = socketName;
    const ctx = socket?.name === ExtensionName.Tls ? packedAs(socket.typed_config, ExtensionType.UpstreamTlsContext) : undefined;
    if (ctx !== undefined) {
      // SIMPLE (and MUTUAL with files) present no mesh certificate; only the SDS `default` secret is the client's SVID.
      const presentsSvid = (ctx.common_tls_context?.tls_certificate_sds_secret_configs ?? []).length > 0;
      const hello: ClientHello = {
        tls: true,
        sni: ctx.sni,
        alpn: alpnOf(ctx),
        ...(presentsSvid ? { certificate: me } : {}),
        acceptsServer: sans(ctx, 'exact'),
        context: ctx,
        how: `${presentsSvid ? `mTLS as ${me}` : 'TLS without a mesh certificate'}, SNI ${String(ctx.sni)}, ALPN [${alpnOf(ctx).join(', ')}]`,
      };
      steps.push(`client: sends ${hello.how}`);
      return hello;
    }
    steps.push('client: sends plaintext (raw_buffer)');
    return { tls: false, alpn: [], acceptsServer: [], how: 'plaintext from a mesh client' };
  }
  steps.push(
    `client: ${w.meta.namespace}/${w.meta.name} has no outbound cluster with endpoint ${target.spec.address}:${port} ` +
      '(no ServiceEntry visible to its namespace routes there); its app would connect directly, in plaintext',
  );
  return { tls: false, alpn: [], acceptsServer: [], how: 'plaintext (no mesh route)' };
}

function terminalKind(chain: FilterChain): string {
  const filters = chain.filters ?? [];
  const f = filters[filters.length - 1];
  return f?.name === ExtensionName.HttpConnectionManager ? 'HTTP connection manager' : 'tcp_proxy';
}

function describeSteps(steps: readonly MatchStep[]): string {
  return steps.map((s) => `${s.detail} → [${s.remaining.join(', ')}]`).join('; ');
}

/** Where a client's connection comes from, for ipBlocks (a client outside the mesh has no known address). */
const OUTSIDE_SOURCE_IP = '0.0.0.0';

function withAuthorization(r: CheckResult, chain: FilterChain, client: CheckClient, target: WorkloadEntry, port: number, request: CheckRequest | undefined): CheckResult {
  const verdict = authorizeOnChain(chain, {
    ...(r.outcome === 'mtls' && r.peerIdentity !== undefined ? { principal: r.peerIdentity } : {}),
    sourceIp: client.kind === 'workload' ? client.workload.spec.address : OUTSIDE_SOURCE_IP,
    destinationIp: target.spec.address,
    destinationPort: port,
    host: `${target.spec.address}:${port}`,
  }, request);
  if (verdict === undefined) return r;
  r.steps.push(`server: RBAC on ${chain.name}: ${verdict.summary}`);
  return { ...r, authorization: verdict };
}

export function simulateConnection(snapshot: MeshSnapshot, client: CheckClient, target: WorkloadEntry, port: number, request?: CheckRequest): CheckResult {
  const index = indexFor(snapshot);
  const server = proxyConfigFromIndex(index, target);
  const steps: string[] = [];
  const partial: Partial<CheckResult> = {};
  const warnings = [...server.warnings];
  if (client.kind === 'workload') warnings.push(...proxyConfigFromIndex(index, client.workload).warnings);
  const mode = index.workloadPortMtls(target, port);
  const decidedBy = mode.decidedBy ?? DEFAULT_DECIDER;
  const base = { decidedBy, serverMode: mode.mode, warnings: [...new Set(warnings)] };
  const address = target.spec.address;

  const listener = inboundListenerAt(server, address, port);
  const hello = clientHello(snapshot, client, target, port, steps, partial);
  if (listener === undefined) {
    steps.push(`server: no inbound listener on ${address}:${port} (no ServiceEntry selecting ${target.meta.namespace}/${target.meta.name} delivers to workload port ${port})`);
    return { ...base, ...partial, outcome: 'refused', summary: `refused: nothing of the mesh listens on ${address}:${port}`, steps };
  }
  steps.push(`server: ${target.meta.namespace}/${target.meta.name} port ${port} is ${mode.mode}, decided by ${decidedBy}`);

  const facts = detectedFacts(listener, port, hello);
  const selection = selectFilterChain(listener, facts);
  steps.push(`server: listener ${listener.name} sees transport ${facts.transportProtocol}; ${describeSteps(selection.steps)}`);
  if (!selection.matched) {
    return {
      ...base, ...partial, outcome: 'reset', steps,
      summary: `reset: ${selection.reason}; Envoy closes the connection and logs response flag NR`,
    };
  }
  const chain = selection.chain;
  steps.push(`server: filter chain ${chain.name} → ${terminalKind(chain)}`);
  const out = { ...base, ...partial, chain: chain.name };

  const ctx = chain.transport_socket?.name === ExtensionName.Tls ? packedAs(chain.transport_socket.typed_config, ExtensionType.DownstreamTlsContext) : undefined;
  if (ctx !== undefined) {
    if (hello.certificate === undefined) {
      return { ...out, outcome: 'handshake-failure', steps, summary: 'handshake failure: the chain requires a client certificate and the client has none' };
    }
    const prefixes = sans(ctx, 'prefix');
    if (prefixes.length > 0 && !prefixes.some((p) => hello.certificate!.startsWith(p))) {
      return { ...out, outcome: 'handshake-failure', steps, summary: `handshake failure: client ${hello.certificate} is outside the trust domains the server accepts (${prefixes.join(', ')})` };
    }
    const serverId = workloadSpiffeId(snapshot.mesh.trustDomain, target.meta.namespace, serviceAccountOf(target.spec.serviceAccount));
    if (hello.acceptsServer.length > 0 && !hello.acceptsServer.includes(serverId)) {
      return { ...out, outcome: 'handshake-failure', steps, summary: `handshake failure: the client accepts only ${hello.acceptsServer.join(', ')} and the server presents ${serverId}` };
    }
    const serverAlpn = alpnOf(ctx);
    const negotiated = serverAlpn.find((a) => hello.alpn.includes(a));
    steps.push(`TLS: server presents ${serverId}, client presents ${hello.certificate}; ALPN negotiated ${negotiated ?? '(none)'}`);
    const verifiedBy = { client: bundleUse(ctx, hello.certificate), server: bundleUse(hello.context ?? {}, serverId) };
    steps.push(`TLS: the server verifies ${hello.certificate} with ${describeUse(verifiedBy.client)}; the client verifies ${serverId} with ${describeUse(verifiedBy.server)}`);
    return withAuthorization({
      ...out, outcome: 'mtls', steps, peerIdentity: hello.certificate, serverIdentity: serverId, verifiedBy,
      summary: `mTLS: the server sees peer ${hello.certificate}; the client verified ${serverId}`,
    }, chain, client, target, port, request);
  }
  if (hello.tls && facts.transportProtocol === 'tls') {
    return withAuthorization({
      ...out, outcome: 'tls-passthrough', steps,
      summary: 'TLS passthrough: the TLS is not terminated by the sidecar and reaches the app as is (only an app that serves TLS itself completes it)',
    }, chain, client, target, port, request);
  }
  if (hello.tls) {
    return {
      ...out, outcome: 'handshake-failure', steps,
      summary: 'broken: the client sends TLS, but the port accepts plaintext only and hands the TLS bytes to the app',
    };
  }
  return withAuthorization({ ...out, outcome: 'plaintext', steps, summary: 'plaintext: no peer identity (the app sees no client certificate)' }, chain, client, target, port, request);
}
