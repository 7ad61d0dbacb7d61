import { status } from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import { GeneratorError, type Generator, type GenerateRequest, type ProxyInfo, type Resource } from '../xds/core/types.js';
import { createResource, resourceFromAny } from '../xds/core/resource.js';
import { TypeUrl } from '../envoy/type-urls.js';
import type { BundleSet, Svid, SvidSource } from './svid-source.js';
import { classifySecretName, DEFAULT_SECRET, ROOTCA_SECRET, trustDomainOfName } from './secret-names.js';
import { spiffeValidatorSecret, tlsCertificateSecretAny, trustedCaSecret } from './secret-resources.js';
import { clip, MAX_LOGGED_EXAMPLES } from '../xds/core/limits.js';

export interface SecretGeneratorDeps {
  /** meshd: its SVID cache and CA (caSvidSource); the agent: the certificate set it keeps. */
  source: SvidSource;
  logger: Logger;
}

/**
 * The SDS generator: the same code path whether Envoy asks on the SDS service or over ADS,
 * and whether meshd or `meshd agent` serves it. A proxy gets only the identity it proved:
 * names of other identities, or of trust domains meshd does not federate with, are refused with
 * PERMISSION_DENIED naming the resource, and nothing is minted.
 */
export class SecretGenerator implements Generator {
  readonly typeUrl = TypeUrl.Secret;
  /** Bundle secrets are the same for every proxy: encoded once per bundle sequence. */
  private bundleCache = new Map<string, Resource>();
  private bundleSequence = -1;
  /**
   * Per SVID object (held by the SVID cache): dropped with it when it rotates or expires. Nearly
   * every proxy asks for its certificate by one name (`default`), so one name's resource is held
   * as is and a Map is made only for a second name: 10,000 proxies hold 10,000 fewer Maps.
   */
  private readonly certificateCache = new WeakMap<Svid, Resource | Map<string, Resource>>();
  /** Streams already warned about unknown names: a stream's ProxyInfo is one object for its life. */
  private readonly warnedUnknown = new WeakSet<ProxyInfo>();

  constructor(private readonly deps: SecretGeneratorDeps) {}

  async generate(proxy: ProxyInfo, request: GenerateRequest): Promise<Resource[]> {
    const { identity } = proxy;
    // SDS is always named by Envoy; a wildcard asks for everything this proxy may have (as SPIRE answers an empty list).
    const names = request.names ?? new Set([DEFAULT_SECRET, ROOTCA_SECRET, identity.spiffeId, `spiffe://${identity.trustDomain}`]);
    // A foreign trust domain's name is served only while its bundle is held: look at the bundles first.
    let bundles: BundleSet | undefined;
    const namesForeignDomain = [...names].some((n) => { const td = trustDomainOfName(n); return td !== undefined && td !== identity.trustDomain; });
    if (namesForeignDomain) bundles = await this.deps.source.bundles();
    const federated = bundles?.roots ?? new Map<string, readonly string[]>();
    const classified = [...names].map((n) => classifySecretName(n, identity.spiffeId, identity.trustDomain, federated));
    const denied = classified.find((c) => c.kind === 'denied');
    if (denied && denied.kind === 'denied') {
      this.deps.logger.warn({ proxy: clip(proxy.id), spiffeId: identity.spiffeId, resource: clip(denied.name) }, 'secret refused');
      throw new GeneratorError(status.PERMISSION_DENIED, `secret "${clip(denied.name)}" refused: ${clip(denied.reason)}`);
    }
    const out: Resource[] = [];
    const unknown: string[] = [];
    for (const c of classified) {
      if (c.kind === 'certificate') {
        const svid = await this.deps.source.svid(proxy);
        out.push(this.certificateResource(c.name, svid));
      } else if (c.kind === 'bundle') {
        bundles ??= await this.deps.source.bundles();
        out.push(this.bundleResource(c.name, c.validator, c.trustDomain, bundles, proxy));
      } else if (c.kind === 'unknown') {
        unknown.push(c.name);
      }
    }
    if (unknown.length > 0) this.reportUnknown(proxy, unknown);
    return out;
  }

  /**
   * Names meshd does not serve are answered by their absence. The first time a stream asks
   * for any, one warning says how many and names a few; after that only at debug level: the
   * client decides how many names and requests there are, and must not decide the log's size.
   */
  private reportUnknown(proxy: ProxyInfo, names: readonly string[]): void {
    const first = !this.warnedUnknown.has(proxy);
    if (first) this.warnedUnknown.add(proxy);
    const fields = { proxy: clip(proxy.id), count: names.length, examples: names.slice(0, MAX_LOGGED_EXAMPLES).map((n) => clip(n)) };
    const message = 'unknown secret names requested; they will not be served';
    if (first) this.deps.logger.warn(fields, `${message} (logged once per stream)`);
    else this.deps.logger.debug(fields, message);
  }

  /** A proxy's own secret, encoded once per SVID and name: a reconnect or a re-request reuses the bytes. */
  private certificateResource(name: string, svid: Svid): Resource {
    const cached = this.certificateCache.get(svid);
    const hit = cached instanceof Map ? cached.get(name) : cached?.name === name ? cached : undefined;
    if (hit) return hit;
    const resource = resourceFromAny(name, tlsCertificateSecretAny(name, svid.chainPem, svid.keyPem));
    if (!cached) this.certificateCache.set(svid, resource);
    else if (cached instanceof Map) cached.set(name, resource);
    else this.certificateCache.set(svid, new Map([[cached.name, cached], [name, resource]]));
    return resource;
  }

  /**
   * ALL: every trust domain's bundle, each its own entry of the SPIFFE validator, so Envoy checks
   * a peer only against the bundle of the trust domain its ID names (a foreign CA can never vouch
   * for meshd's own identities). A trust domain's name: that domain's bundle alone. ROOTCA: the
   * own trust domain's roots as trusted_ca.
   */
  private bundleResource(name: string, validator: 'trusted-ca' | 'spiffe', trustDomain: string | undefined, bundles: BundleSet, proxy: ProxyInfo): Resource {
    if (bundles.sequence !== this.bundleSequence) {
      this.bundleCache = new Map();
      this.bundleSequence = bundles.sequence;
    }
    // A trust domain's name uses the SPIFFE validator unless the proxy opted out; ALL always does.
    const useSpiffe = validator === 'spiffe' && (trustDomain === undefined || supportsSpiffeValidator(proxy));
    const key = `${name}|${useSpiffe}`;
    let r = this.bundleCache.get(key);
    if (!r) {
      const td = trustDomain ?? bundles.trustDomain;
      const roots = bundles.roots.get(td) ?? [];
      const value = useSpiffe
        ? spiffeValidatorSecret(name, trustDomain === undefined ? bundles.roots : new Map([[td, roots]]))
        : trustedCaSecret(name, roots);
      r = createResource(this.typeUrl, name, value);
      this.bundleCache.set(key, r);
    }
    return r;
  }
}

/**
 * SPIRE serves a trust-domain bundle through the SPIFFE validator unless the proxy says
 * `disable_spiffe_cert_validation` in its node metadata; meshd does the same.
 */
function supportsSpiffeValidator(proxy: ProxyInfo): boolean {
  const flag = proxy.metadata['disable_spiffe_cert_validation'];
  if (flag === true || flag === 'true' || flag === '1') return false;
  return true;
}
