import { Client, credentials, Metadata, status, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { splitPemCertificates } from '../ca/pem.js';
import { decodeMessage, encodeMessage } from '../envoy/protos.js';
import { TypeUrl } from '../envoy/type-urls.js';
import { ALL_BUNDLES_SECRET } from '../svid/secret-names.js';
import { clip } from '../xds/core/limits.js';

/**
 * The foreign trust domains' bundles for `meshd agent`: one SDS stream to meshd (mTLS with the
 * agent's SVID, meshd checked by its SPIFFE ID, as the xDS proxy does) subscribed to `ALL`, whose
 * SPIFFE-validator entries are the bundles meshd trusts, one per trust domain. The agent's local
 * SDS serves them on under the same names. Entries for the agent's own trust domain are ignored
 * (its own bundle comes with its certificate), so meshd's answer can never replace it.
 *
 * A response that does not decode, or an entry whose bundle holds no certificate, leaves the last
 * good set in place; the stream is re-opened `retryMs` after it ends.
 */
const SDS_METHOD = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';
const REQUEST = 'type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest';
const RESPONSE = 'type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse';
const SPIFFE_VALIDATOR = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig';
const RETRY_MS = 5_000;

export type ForeignRootsMap = ReadonlyMap<string, { readonly rootsPem: readonly string[] }>;

export interface FederatedBundleFeedOptions {
  meshdAddress: string;
  meshdSpiffeId: string;
  /** The agent's own trust domain: never taken from the feed. */
  trustDomain: string;
  nodeId: string;
  /** The agent's current SVID and the roots that verify meshd; undefined until it has one. */
  credentials: () => Promise<{ keyPem: string; chainPem: string; rootsPem: string } | undefined>;
  logger: Logger;
  clock: Clock;
  retryMs?: number;
}

/** The foreign bundles inside an `ALL` Secret (plain object from decodeMessage); undefined when it is not one. */
export function foreignBundlesOfAllSecret(secret: Record<string, any>, ownTrustDomain: string): Map<string, { rootsPem: string[] }> | undefined {
  const custom = secret.validation_context?.custom_validator_config;
  // decodeMessage unpacks a known Any into {'@type', ...fields}; raw {type_url, value} is decoded here.
  const typed = custom?.typed_config as ({ '@type'?: string; type_url?: string; value?: Buffer } & Record<string, unknown>) | undefined;
  if (custom?.name !== 'envoy.tls.cert_validator.spiffe' || typed === undefined) return undefined;
  let config: { trust_domains?: Array<{ name?: string; trust_bundle?: { inline_bytes?: Buffer | string } }> };
  if (typed['@type'] === SPIFFE_VALIDATOR) config = typed as typeof config;
  else if (typed.type_url === SPIFFE_VALIDATOR && typed.value !== undefined) config = decodeMessage(SPIFFE_VALIDATOR, typed.value) as typeof config;
  else return undefined;
  const out = new Map<string, { rootsPem: string[] }>();
  for (const entry of config.trust_domains ?? []) {
    const td = entry.name;
    if (td === undefined || td === ownTrustDomain) continue;
    const raw = entry.trust_bundle?.inline_bytes;
    const rootsPem = splitPemCertificates(typeof raw === 'string' ? Buffer.from(raw, 'base64').toString() : Buffer.from(raw ?? Buffer.alloc(0)).toString());
    // Each must be a CA certificate; one that is not makes the whole answer suspect.
    if (rootsPem.length === 0 || !rootsPem.every((pem) => { try { return new X509Certificate(pem).ca; } catch { return false; } })) return undefined;
    out.set(td, { rootsPem });
  }
  return out;
}

/** A response resource as a Secret object: decodeMessage unpacks known Anys into {'@type', ...fields}. */
function secretOf(r: Record<string, any>): Record<string, any> | undefined {
  if (r['@type'] === TypeUrl.Secret) return r;
  if (r.type_url === TypeUrl.Secret && r.value !== undefined) return decodeMessage(TypeUrl.Secret, r.value as Buffer);
  return undefined;
}

export class FederatedBundleFeed {
  private view: ForeignRootsMap = new Map();
  private key = '[]';
  private readonly listeners = new Set<(m: ForeignRootsMap) => void>();
  private call: ClientDuplexStream<Buffer, Buffer> | undefined;
  private client: Client | undefined;
  private cancelRetry: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly opts: FederatedBundleFeedOptions) {}

  current(): ForeignRootsMap {
    return this.view;
  }

  onChange(listener: (m: ForeignRootsMap) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    void this.open();
  }

  stop(): void {
    this.stopped = true;
    this.cancelRetry?.();
    this.call?.cancel();
    this.client?.close();
  }

  private retry(): void {
    if (this.stopped) return;
    this.cancelRetry = this.opts.clock.timer(this.opts.retryMs ?? RETRY_MS, () => void this.open());
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const log = this.opts.logger;
    let material;
    try {
      material = await this.opts.credentials();
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'federated bundles: no credentials yet');
    }
    if (!material || this.stopped) { this.retry(); return; }
    const expected = this.opts.meshdSpiffeId;
    const creds = credentials.createSsl(Buffer.from(material.rootsPem), Buffer.from(material.keyPem), Buffer.from(material.chainPem), {
      checkServerIdentity: (_h, cert) => ((cert.subjectaltname ?? '').split(', ').includes(`URI:${expected}`) ? undefined : new Error(`meshd presented ${cert.subjectaltname ?? 'no SAN'}, not ${expected}`)),
    });
    const client = new Client(this.opts.meshdAddress, creds, { 'grpc.ssl_target_name_override': 'meshd', 'grpc.use_local_subchannel_pool': 1 });
    const bytes = (b: Buffer): Buffer => b;
    const call = client.makeBidiStreamRequest(SDS_METHOD, bytes, bytes, new Metadata());
    this.client = client;
    this.call = call;
    const request = (versionInfo: string, nonce: string): void => {
      call.write(Buffer.from(encodeMessage(REQUEST, {
        node: { id: this.opts.nodeId }, type_url: TypeUrl.Secret, resource_names: [ALL_BUNDLES_SECRET], version_info: versionInfo, response_nonce: nonce,
      })));
    };
    call.on('data', (b: Buffer) => {
      let response: { version_info?: string; nonce?: string; resources?: Array<Record<string, any>> };
      try {
        response = decodeMessage(RESPONSE, b) as typeof response;
      } catch (err) {
        log.warn({ err: clip((err as Error).message) }, 'federated bundles: meshd sent a response that does not decode; keeping the last good set');
        return;
      }
      const secret = response.resources?.map((r) => secretOf(r)).find((x) => x?.name === ALL_BUNDLES_SECRET);
      const found = secret ? foreignBundlesOfAllSecret(secret, this.opts.trustDomain) : undefined;
      if (found === undefined) {
        log.warn('federated bundles: meshd\'s ALL secret is not a SPIFFE validator with CA certificates; keeping the last good set');
      } else {
        this.publish(found);
      }
      request(response.version_info ?? '', response.nonce ?? '');
    });
    call.on('status', (s: StatusObject) => {
      client.close();
      if (this.stopped) return;
      if (s.code !== status.CANCELLED) log.warn({ code: status[s.code], details: clip(s.details ?? '') }, 'federated bundles: the stream to meshd ended; retrying');
      this.retry();
    });
    call.on('error', () => { /* reported through 'status' */ });
    request('', '');
  }

  private publish(next: Map<string, { rootsPem: string[] }>): void {
    const key = JSON.stringify([...next].sort(([a], [b]) => (a < b ? -1 : 1)));
    if (key === this.key) return;
    this.key = key;
    this.view = next;
    this.opts.logger.info({ trustDomains: [...next.keys()] }, 'federated bundles changed');
    for (const l of this.listeners) {
      try { l(next); } catch (err) { this.opts.logger.error({ err: (err as Error).message }, 'a federated bundle listener failed'); }
    }
  }
}
