/**
 * Principals and trust domains with the mesh's trust domain aliases, as istiod rewrites them
 * before generating RBAC (pilot/pkg/security/trustdomain/bundle.go, util.go).
 *
 * A principal `<td>/ns/<ns>/sa/<sa>` whose trust domain is the mesh's, one of its aliases, or
 * `cluster.local` (Istio's name for "the local trust domain") is expanded to one principal per
 * trust domain of the bundle; a principal of another trust domain, one with a `*` trust domain,
 * or one not of that five-part shape is kept as written. A trust domain pattern with a leading
 * `*` that covers a bundle entry is kept for that entry instead of being rewritten.
 */

const LOCAL_TRUST_DOMAIN = 'cluster.local';

export class TrustDomainBundle {
  /** The mesh trust domain first, then its aliases. */
  readonly trustDomains: readonly string[];

  constructor(trustDomain: string, aliases: readonly string[]) {
    this.trustDomains = [trustDomain, ...aliases];
  }

  replaceTrustDomainAliases(principals: readonly string[]): string[] {
    const out: string[] = [];
    for (const principal of principals) {
      const parts = principal.split('/');
      if (parts.length !== 5 || parts[0] === '*') {
        out.push(principal);
        continue;
      }
      const td = parts[0]!;
      if (!matchesAny(td, this.trustDomains) && td !== LOCAL_TRUST_DOMAIN) {
        out.push(principal);
        continue;
      }
      const forAliases: string[] = [];
      for (const alias of this.trustDomains) {
        const rewritten = suffixMatch(alias, td) ? principal : [alias, ...parts.slice(1)].join('/');
        if (!forAliases.includes(rewritten)) forAliases.push(rewritten);
      }
      out.push(...forAliases);
    }
    return out;
  }

  /** `source.trustDomain` / `trustDomains`: a value naming a bundle member stands for all of them. */
  expandTrustDomainAliases(values: readonly string[]): string[] {
    const out: string[] = [];
    for (const v of values) {
      for (const x of this.trustDomains.includes(v) ? this.trustDomains : [v]) if (!out.includes(x)) out.push(x);
    }
    return out;
  }
}

function prefixMatch(a: string, pattern: string): boolean {
  return pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
}

function suffixMatch(a: string, pattern: string): boolean {
  return pattern.startsWith('*') && a.endsWith(pattern.slice(1));
}

/** Exact, `*`, or a prefix/suffix pattern on either side. */
function matchesAny(a: string, list: readonly string[]): boolean {
  return list.some((s) => a === s || s === '*' || prefixMatch(a, s) || prefixMatch(s, a) || suffixMatch(a, s) || suffixMatch(s, a));
}
