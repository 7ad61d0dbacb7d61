import type { ConfigSource } from '../../envoy/messages.js';
import { DEFAULT_SECRET, ROOTCA_SECRET } from '../../svid/secret-names.js';
import type { ProxyConfigParts } from './proxy-config.js';

/**
 * Where a sidecar resolves the `default` and `ROOTCA` secrets its TLS contexts name.
 *
 * - `ads` (no metadata): from meshd, over the same ADS stream (`meshd bootstrap` without
 *   --agent: Envoy holds the token and meshd makes its key).
 * - `agent`: from `meshd agent` beside it, over SDS on the bootstrap's static `sds-grpc`
 *   cluster (the agent's Unix socket), as istiod writes every sidecar's secret references for
 *   istio-agent (pkg/model/authentication.go: api_config_source GRPC on `sds-grpc`). The agent
 *   makes the key and holds the certificate; meshd never sees the key.
 *
 * meshd learns which from node metadata `MESHD_SDS_SOURCE: agent`, written by
 * `meshd bootstrap --agent` in the same bootstrap that defines `sds-grpc`, so the marker and the
 * cluster it relies on always travel together. It only changes where Envoy looks for secrets,
 * never what the proxy may have: the identity still comes from the stream's credential.
 */
export const SDS_SOURCE_METADATA = 'MESHD_SDS_SOURCE';
export const SDS_SOURCE_AGENT = 'agent';
export const SDS_SOURCE_ADS = 'ads';
/** istio-agent's name for the bootstrap cluster that reaches its SDS socket (tools/packaging/common/envoy_bootstrap.json). */
export const SDS_GRPC_CLUSTER = 'sds-grpc';

export type SdsSource = typeof SDS_SOURCE_ADS | typeof SDS_SOURCE_AGENT;

/** The proxy's SDS source, or a refusal naming the bad value (an unknown value is a broken bootstrap, not a default). */
export function sdsSourceOf(metadata: Readonly<Record<string, unknown>>): { source: SdsSource } | { error: string } {
  const value = metadata[SDS_SOURCE_METADATA];
  if (value === undefined || value === SDS_SOURCE_ADS) return { source: SDS_SOURCE_ADS };
  if (value === SDS_SOURCE_AGENT) return { source: SDS_SOURCE_AGENT };
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : `a ${Array.isArray(value) ? 'list' : typeof value}`;
  return { error: `node metadata ${SDS_SOURCE_METADATA} is ${shown}; it must be "${SDS_SOURCE_AGENT}" (secrets from meshd agent's SDS socket) or "${SDS_SOURCE_ADS}" (from meshd over ADS, the same as leaving it out)` };
}

export function isAgentFronted(metadata: Readonly<Record<string, unknown>>): boolean {
  return metadata[SDS_SOURCE_METADATA] === SDS_SOURCE_AGENT;
}

/**
 * SDS on the `sds-grpc` cluster, with istiod's settings for the two workload secrets:
 * initial_fetch_timeout 0s, so listeners and clusters keep warming until the agent answers.
 */
export function sdsFromAgent(): ConfigSource {
  return {
    api_config_source: {
      api_type: 'GRPC',
      transport_api_version: 'V3',
      set_node_on_first_message_only: true,
      grpc_services: [{ envoy_grpc: { cluster_name: SDS_GRPC_CLUSTER } }],
    },
    resource_api_version: 'V3',
    initial_fetch_timeout: { seconds: 0 },
  };
}

const AGENT_SOURCE = sdsFromAgent();
const WORKLOAD_SECRETS = new Set([DEFAULT_SECRET, ROOTCA_SECRET]);

/** An SdsSecretConfig for `default` or `ROOTCA` whose source is the ADS stream. */
function isWorkloadSecretOverAds(value: Record<string, unknown>): boolean {
  const source = value['sds_config'];
  return typeof value['name'] === 'string' && WORKLOAD_SECRETS.has(value['name'])
    && typeof source === 'object' && source !== null && 'ads' in source;
}

/** Copies only the path down to each replaced secret reference; untouched subtrees keep their identity. */
function rewrite(value: unknown): unknown {
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v, i) => {
      const r = rewrite(v);
      if (r !== v) (out ??= [...value])[i] = r;
    });
    return out ?? value;
  }
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  const record = value as Record<string, unknown>;
  if (isWorkloadSecretOverAds(record)) return { ...record, sds_config: AGENT_SOURCE };
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(record)) {
    const r = rewrite(v);
    if (r !== v) (out ??= { ...record })[k] = r;
  }
  return out ?? value;
}

const rewritten = new WeakMap<object, unknown>();

/**
 * The same resources with every `default`/`ROOTCA` reference resolved against the agent.
 * Memoised per array, so the arrays a namespace shares are rewritten (and then encoded) once per
 * snapshot however many agent-fronted sidecars ask; an array with no TLS context comes back as is.
 */
export function withAgentSecrets<T extends readonly object[]>(list: T): T {
  let r = rewritten.get(list) as T | undefined;
  if (r === undefined) {
    r = rewrite(list) as T;
    rewritten.set(list, r);
  }
  return r;
}

const agentParts = new WeakMap<ProxyConfigParts, ProxyConfigParts>();

/** A workload's config parts as an agent-fronted sidecar gets them (see withAgentSecrets). */
export function agentFrontedParts(parts: ProxyConfigParts): ProxyConfigParts {
  let r = agentParts.get(parts);
  if (r === undefined) {
    r = {
      own: { ...parts.own, listeners: withAgentSecrets(parts.own.listeners), clusters: withAgentSecrets(parts.own.clusters) },
      shared: { ...parts.shared, listeners: withAgentSecrets(parts.shared.listeners), clusters: withAgentSecrets(parts.shared.clusters) },
      sharedListeners: withAgentSecrets(parts.sharedListeners),
      clashWarnings: parts.clashWarnings,
    };
    agentParts.set(parts, r);
  }
  return r;
}
