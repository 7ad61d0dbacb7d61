import type { FilterChain, FilterChainMatch, Listener } from '../envoy/messages.js';

/**
 * Envoy's filter chain selection (FilterChainManagerImpl::findFilterChain), as a pure function
 * over a generated Listener. Envoy narrows the chains criterion by criterion, in this order:
 * destination port, destination IP, server name (SNI), transport protocol, application
 * protocols (ALPN), then source criteria. At each step the chains that name the connection's
 * value win; only if none does, the chains that leave the criterion empty go on. There is no
 * backtracking: once a specific chain wins a step, a later mismatch means no chain at all, and
 * Envoy closes the connection with response flag NR.
 *
 * Supported criteria: the ones meshd's generators set (destination_port, server_names,
 * transport_protocol, application_protocols). A chain using any other criterion is reported
 * rather than guessed at.
 */
export interface ConnectionFacts {
  destinationPort: number;
  /** What the listener filters detected: `tls` only with a TLS inspector and a ClientHello. */
  transportProtocol: 'tls' | 'raw_buffer';
  /** SNI from the ClientHello, if any. */
  serverName?: string;
  /** ALPN the client offers, in its order. */
  applicationProtocols: readonly string[];
}

export interface MatchStep {
  criterion: 'destination_port' | 'server_names' | 'transport_protocol' | 'application_protocols';
  /** The chains left after this step. */
  remaining: readonly string[];
  detail: string;
}

export type ChainSelection =
  | { matched: true; chain: FilterChain; steps: MatchStep[] }
  | { matched: false; steps: MatchStep[]; reason: string };

const SUPPORTED = new Set(['destination_port', 'server_names', 'transport_protocol', 'application_protocols']);

function fcm(c: FilterChain): FilterChainMatch {
  return c.filter_chain_match ?? {};
}

/** The facts the listener can actually see: without tls_inspector every connection is raw_buffer with no SNI/ALPN. */
export function detectedFacts(listener: Listener, port: number, client: { tls: boolean; sni?: string; alpn: readonly string[] }): ConnectionFacts {
  const inspects = (listener.listener_filters ?? []).some((f) => f.name === 'envoy.filters.listener.tls_inspector');
  if (client.tls && inspects) {
    return { destinationPort: port, transportProtocol: 'tls', applicationProtocols: client.alpn, ...(client.sni !== undefined ? { serverName: client.sni } : {}) };
  }
  // Envoy sets raw_buffer when no listener filter detected a transport protocol.
  return { destinationPort: port, transportProtocol: 'raw_buffer', applicationProtocols: [] };
}

function serverNameMatches(patterns: readonly string[], sni: string): number {
  // Exact names beat wildcards; among wildcards the longest suffix wins (Envoy's lookup order).
  let best = -1;
  for (const p of patterns) {
    if (p === sni) return Number.MAX_SAFE_INTEGER;
    if (p.startsWith('*.') && sni.endsWith(p.slice(1))) best = Math.max(best, p.length);
  }
  return best;
}

export function selectFilterChain(listener: Listener, facts: ConnectionFacts): ChainSelection {
  const steps: MatchStep[] = [];
  for (const c of listener.filter_chains ?? []) {
    const unsupported = Object.keys(fcm(c)).filter((k) => !SUPPORTED.has(k));
    if (unsupported.length > 0) {
      return { matched: false, steps, reason: `chain ${c.name} matches on ${unsupported.join(', ')}, which meshd check does not model` };
    }
  }
  const names = (cs: readonly FilterChain[]): string[] => cs.map((c) => c.name ?? '');
  let chains: readonly FilterChain[] = listener.filter_chains ?? [];

  // 1. destination port
  {
    const exact = chains.filter((c) => fcm(c).destination_port?.value === facts.destinationPort);
    chains = exact.length > 0 ? exact : chains.filter((c) => fcm(c).destination_port === undefined);
    steps.push({ criterion: 'destination_port', remaining: names(chains), detail: `destination port ${facts.destinationPort}` });
    if (chains.length === 0) return { matched: false, steps, reason: `no filter chain for destination port ${facts.destinationPort}` };
  }
  // 2. server names (SNI)
  {
    const sni = facts.serverName;
    let best = -1;
    let winners: FilterChain[] = [];
    if (sni !== undefined) {
      for (const c of chains) {
        const score = serverNameMatches(fcm(c).server_names ?? [], sni);
        if (score > best) [best, winners] = [score, [c]];
        else if (score === best && score >= 0) winners.push(c);
      }
    }
    chains = best >= 0 ? winners : chains.filter((c) => (fcm(c).server_names ?? []).length === 0);
    steps.push({ criterion: 'server_names', remaining: names(chains), detail: `server name ${sni ?? '(none)'}` });
    if (chains.length === 0) return { matched: false, steps, reason: `no filter chain for server name ${sni ?? '(none)'}` };
  }
  // 3. transport protocol
  {
    const exact = chains.filter((c) => fcm(c).transport_protocol === facts.transportProtocol);
    chains = exact.length > 0 ? exact : chains.filter((c) => (fcm(c).transport_protocol ?? '') === '');
    steps.push({ criterion: 'transport_protocol', remaining: names(chains), detail: `transport protocol ${facts.transportProtocol}` });
    if (chains.length === 0) return { matched: false, steps, reason: `no filter chain accepts transport protocol ${facts.transportProtocol}` };
  }
  // 4. application protocols: the first offered ALPN some chain names, else the chains naming none.
  {
    let picked: FilterChain[] | undefined;
    let via = '(none)';
    for (const alpn of facts.applicationProtocols) {
      const hit = chains.filter((c) => (fcm(c).application_protocols ?? []).includes(alpn));
      if (hit.length > 0) {
        picked = hit;
        via = alpn;
        break;
      }
    }
    chains = picked ?? chains.filter((c) => (fcm(c).application_protocols ?? []).length === 0);
    const offered = facts.applicationProtocols.length > 0 ? `[${facts.applicationProtocols.join(', ')}]` : 'none';
    steps.push({ criterion: 'application_protocols', remaining: names(chains), detail: `ALPN offered ${offered}, matched ${via}` });
    if (chains.length === 0) return { matched: false, steps, reason: `no filter chain accepts ALPN ${offered}` };
  }
  if (chains.length > 1) {
    // Envoy refuses such a listener outright ("multiple filter chains with the same matching rules").
    return { matched: false, steps, reason: `filter chains ${names(chains).join(', ')} have the same match; Envoy would reject the listener` };
  }
  return { matched: true, chain: chains[0]!, steps };
}

/** Pairs of chains in one listener whose matches are identical (Envoy rejects the listener). */
export function duplicateMatches(listener: Listener): string[] {
  const seen = new Map<string, string>();
  const out: string[] = [];
  for (const c of listener.filter_chains ?? []) {
    const m = fcm(c);
    const key = JSON.stringify([m.destination_port?.value ?? 0, [...(m.server_names ?? [])].sort(), m.transport_protocol ?? '', [...(m.application_protocols ?? [])].sort()]);
    const other = seen.get(key);
    if (other !== undefined) out.push(`${other} and ${c.name}`);
    else seen.set(key, c.name ?? '');
  }
  return out;
}
