import { performance } from 'node:perf_hooks';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { IssueOptions, IssuedCertificate, IssuedKeyPair, LeafKeyType } from './types.js';
import { CaError, errorMessage } from './errors.js';
import { CsrError, parseCsr } from './csr.js';
import { generateKey, generateP256, LEAF_KEY_TYPES } from './keys.js';
import type { CaMetrics } from './metrics.js';
import { randomSerial, serialHex, systemRandom, type RandomSource } from './serial.js';
import { LocalKeySigner, type Signer } from './signer.js';
import { parseSpiffeId, SpiffeIdError } from './spiffe-id.js';
import type { IssuerInfo } from './templates.js';
import { mintLeaves, type LeafJob, type LeafOutcome } from './leaf-mint.js';
import type { MintPool } from './mint-pool.js';
import { resolveTtl, type TtlPolicy } from './ttl-policy.js';

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** Who signs right now and what the bundle holds: supplied by the authority (built-in or plug-in). */
export interface SigningState {
  signer: Signer;
  rootsPem: string;
}

export interface IssuerDeps extends TtlPolicy {
  trustDomain: string;
  clock: Clock;
  logger: Logger;
  metrics: CaMetrics;
  random?: RandomSource;
  /** undefined (or a throw) means the CA cannot sign yet. */
  current(): SigningState | undefined;
  /** Worker threads for P-256 leaves signed by a key in this process (mint-pool.ts); without one, inline. */
  mintPool?: MintPool;
}

/** A request whose identity, DNS names and TTL passed the checks. */
interface CheckedRequest {
  spiffeId: string;
  ttlMs: number;
  dnsNames: string[];
}

/**
 * The SVID and its key as one object literal, never `{ ...cert, keyPem }`: V8 clones a spread
 * source through a fresh root map, so every SVID held that way got a hidden class of its own
 * (631 of 639 in a test run; ~340 B of map and descriptors each, and one more object for the
 * garbage collector to trace per proxy).
 */
function withKey(c: IssuedCertificate, keyPem: string, keyType: LeafKeyType): IssuedKeyPair {
  return {
    spiffeId: c.spiffeId, certPem: c.certPem, chainPem: c.chainPem, rootsPem: c.rootsPem, serialHex: c.serialHex,
    notBefore: c.notBefore, notAfter: c.notAfter, issuerFingerprint: c.issuerFingerprint, keyPem, keyType,
  };
}

/** RFC 1123 host names, optionally one leading "*." label; lowercase as certificates carry them. */
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * The issuing pipeline shared by both paths: identity and TTL checks, template, signature,
 * validation of the result, metrics. A request error is a CaError with Istio's kind.
 */
export class SvidIssuer {
  private readonly random: RandomSource;

  constructor(private readonly deps: IssuerDeps) {
    this.random = deps.random ?? systemRandom;
  }

  /** meshd makes the key (the SDS path: Envoy cannot make a CSR). */
  async issue(opts: IssueOptions & { keyType?: LeafKeyType }): Promise<IssuedKeyPair> {
    const [result] = await this.issueBatch([opts]);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Several key pairs and SVIDs in one pass, one result per request (the SVID or its CaError).
   * P-256 leaves go to a mint worker when there is one (mintP256); otherwise their keys are made
   * back to back, then mintAll signs and validates in phases: minted one by one between other
   * work, each key generation and signature finds OpenSSL's curve tables evicted from the CPU
   * cache and costs about twice its tight-loop time (in-process, 32 leaves: 107 µs each one by
   * one, 79 µs in phases). The SDS path batches requests made close together into one call
   * (svid-cache.ts, TurnBatcher).
   */
  async issueBatch(requests: ReadonlyArray<IssueOptions & { keyType?: LeafKeyType }>): Promise<Array<IssuedKeyPair | CaError>> {
    const started = performance.now();
    const results: Array<IssuedKeyPair | Error> = new Array(requests.length);
    const p256: Array<{ at: number; request: CheckedRequest }> = [];
    const slowKeys: Array<Promise<void>> = [];
    requests.forEach((opts, at) => {
      this.deps.metrics.csrCount.inc();
      const keyType = opts.keyType ?? 'ec-p256';
      try {
        if (!LEAF_KEY_TYPES.includes(keyType)) throw new CaError('CSR_ERROR', `unsupported leaf key type "${String(keyType)}" (supported: ${LEAF_KEY_TYPES.join(', ')})`);
        const request = this.checkRequest(opts);
        this.signingState(); // refuse before any key is made (an RSA key costs ~140 ms)
        if (keyType === 'ec-p256') p256.push({ at, request });
        else slowKeys.push(this.issueWithKey(request, keyType).then((r) => { results[at] = r; }, (e: unknown) => { results[at] = asError(e); }));
      } catch (e) {
        results[at] = asError(e);
      }
    });
    if (p256.length > 0) {
      try {
        const leaves = await this.mintP256(p256.map(({ request }) => request));
        p256.forEach(({ at }, i) => { results[at] = leaves[i]!; });
      } catch (e) {
        for (const { at } of p256) results[at] = asError(e);
      }
    }
    await Promise.all(slowKeys);
    return results.map((r) => {
      if (r instanceof Error) return this.failed(r);
      this.succeeded(r.keyType, 'key', started);
      return r;
    });
  }

  /** A key type generated on the libuv pool (RSA), then minted on its own. */
  private async issueWithKey(request: CheckedRequest, keyType: LeafKeyType): Promise<IssuedKeyPair> {
    const key = await generateKey(keyType);
    return withKey(await this.mintOne(request, key.spki, keyType), key.privateKeyPem, keyType);
  }

  /** A PKCS#10 CSR: only its key is used; the SAN is the caller's proven identity. */
  async signCsr(opts: IssueOptions & { csrPem: string }): Promise<IssuedCertificate> {
    const started = performance.now();
    this.deps.metrics.csrCount.inc();
    let keyType = 'unknown';
    try {
      const request = this.checkRequest(opts);
      let csr;
      try {
        csr = parseCsr(opts.csrPem);
      } catch (e) {
        if (!(e instanceof CsrError)) throw e;
        this.deps.metrics.csrParsingErrors.inc();
        throw new CaError('CSR_ERROR', e.message);
      }
      keyType = csr.keyType;
      if (csr.requestedUris.some((u) => u !== request.spiffeId)) {
        this.deps.logger.debug({ spiffeId: request.spiffeId, requested: csr.requestedUris }, 'CSR asked for other URI SANs; issuing for the authenticated identity');
      }
      const issued = await this.mintOne(request, csr.spki, csr.keyType);
      this.succeeded(keyType, 'csr', started);
      return issued;
    } catch (e) {
      throw this.failed(e);
    }
  }

  private succeeded(keyType: string, method: 'key' | 'csr', started: number): void {
    this.deps.metrics.successCount.inc();
    this.deps.metrics.observeIssuance(keyType, method, (performance.now() - started) / 1000);
  }

  /** Counts the failure by Istio's error kind; anything that is not a CaError is a generation failure. */
  private failed(e: unknown): CaError {
    const err = e instanceof CaError ? e : new CaError('CERT_GEN_ERROR', `certificate generation failed: ${errorMessage(e)}`, { cause: e });
    this.deps.metrics.signError(err.code);
    return err;
  }

  private checkRequest(opts: IssueOptions): CheckedRequest {
    let id;
    try {
      id = parseSpiffeId(opts.spiffeId);
    } catch (e) {
      if (e instanceof SpiffeIdError) throw new CaError('CSR_ERROR', e.message);
      throw e;
    }
    if (id.trustDomain !== this.deps.trustDomain) {
      throw new CaError('CSR_ERROR', `SPIFFE ID ${id.id} is not in this CA's trust domain ${this.deps.trustDomain}`);
    }
    if (id.path === '') throw new CaError('CSR_ERROR', `SPIFFE ID ${id.id} has no path: a workload SVID needs one (X509-SVID §2)`);
    const dnsNames = opts.dnsNames ?? [];
    for (const name of dnsNames) {
      if (name.length > 253 || !DNS_NAME.test(name)) throw new CaError('CSR_ERROR', `invalid DNS SAN ${JSON.stringify(name)} (lowercase RFC 1123 host name expected)`);
    }
    return { spiffeId: id.id, ttlMs: resolveTtl(opts.ttlMs, this.deps), dnsNames };
  }

  private signingState(): SigningState {
    let state: SigningState | undefined;
    try {
      state = this.deps.current();
    } catch (e) {
      throw new CaError('CA_NOT_READY', `CA is not ready: ${errorMessage(e)}`);
    }
    if (!state) throw new CaError('CA_NOT_READY', 'CA is not ready: no signing certificate');
    const now = this.deps.clock.now();
    if (now >= state.signer.chainNotAfter) {
      throw new CaError('CA_NOT_READY', `CA is not ready: the signing certificate expired at ${new Date(state.signer.chainNotAfter).toISOString()}`);
    }
    return state;
  }

  private async mintOne(request: CheckedRequest, spki: Buffer, keyType: LeafKeyType): Promise<IssuedCertificate> {
    const [cert] = await this.mintAll([{ request, spki }], keyType);
    if (cert instanceof Error) throw cert;
    return cert!;
  }

  /**
   * P-256 key pairs and their SVIDs: on a mint worker when the signing key is in this process
   * and a worker is online, else inline (keys back to back, then mintAll). A worker that
   * fails a batch as a whole (it died, or was replaced) costs a retry inline, not the batch.
   */
  private async mintP256(requests: CheckedRequest[]): Promise<Array<IssuedKeyPair | Error>> {
    const pool = this.deps.mintPool;
    const state = pool?.ready ? this.signingState() : undefined;
    if (pool && state?.signer instanceof LocalKeySigner) {
      const signer = state.signer;
      const issuer = issuerInfo(signer);
      const now = this.deps.clock.now();
      const jobs = requests.map((r) => this.leafJob(r));
      try {
        const minted = await pool.mint(signer, () => ({ key: signer.privateKey, keyType: signer.keyType, issuer, trustDomain: this.deps.trustDomain }), now, jobs);
        return minted.map(({ outcome, keyPem }, i) => {
          const cert = this.finished(outcome, requests[i]!, jobs[i]!.serial, state);
          return cert instanceof Error ? cert : withKey(cert, keyPem, 'ec-p256');
        });
      } catch (e) {
        this.deps.logger.warn({ err: errorMessage(e), leaves: requests.length }, 'mint worker failed a batch; minting it inline');
      }
    }
    const keys = requests.map(() => generateP256());
    const certs = await this.mintAll(requests.map((request, i) => ({ request, spki: keys[i]!.spki })), 'ec-p256');
    return certs.map((c, i) => (c instanceof Error ? c : withKey(c, keys[i]!.privateKeyPem, 'ec-p256')));
  }

  /**
   * Templates, signatures, read-back validation and PEM (leaf-mint.ts), each phase over the
   * whole batch. The signer and the time are read after key generation, so a rotation in
   * between is honoured and validity starts when the certificates are made. A signer that
   * signs batches gets one call; otherwise each template is signed on its own. One item's
   * failure is its own.
   */
  private async mintAll(items: Array<{ request: CheckedRequest; spki: Buffer }>, keyType: LeafKeyType): Promise<Array<IssuedCertificate | Error>> {
    const state = this.signingState();
    const { signer } = state;
    const jobs = items.map(({ request, spki }) => ({ ...this.leafJob(request), spki }));
    const outcomes = await mintLeaves(jobs, { trustDomain: this.deps.trustDomain, issuer: issuerInfo(signer), now: this.deps.clock.now(), keyType }, (templates) => (
      signer.signCertificates
        ? signer.signCertificates(templates)
        : Promise.all(templates.map((t) => Promise.resolve().then(() => signer.signCertificate(t)).catch(asError)))
    ));
    return outcomes.map((outcome, i) => this.finished(outcome, items[i]!.request, jobs[i]!.serial, state));
  }

  /** What leaf-mint needs of a checked request, with a fresh serial (the key is added by whoever makes it). */
  private leafJob(request: CheckedRequest): Omit<LeafJob, 'spki'> {
    return { spiffeId: request.spiffeId, dnsNames: request.dnsNames, ttlMs: request.ttlMs, serial: randomSerial(this.random) };
  }

  /** A minted leaf as the CA hands it out, or its failure (a validator rejection is logged and counted). */
  private finished(outcome: LeafOutcome, request: CheckedRequest, serial: Buffer, state: SigningState): IssuedCertificate | Error {
    const { signer } = state;
    if (!outcome.ok) {
      if (!outcome.invalid) return new Error(outcome.error);
      this.deps.metrics.validatorRejections.inc();
      this.deps.logger.error({ spiffeId: request.spiffeId, errors: outcome.invalid, issuer: signer.certificate.fingerprint256 },
        'minted certificate failed X509-SVID validation; nothing handed out');
      return new CaError('CERT_GEN_ERROR', outcome.error);
    }
    const serialText = serialHex(serial);
    if (this.deps.logger.isLevelEnabled('debug')) {
      this.deps.logger.debug({ spiffeId: request.spiffeId, serial: serialText, notAfter: new Date(outcome.notAfter).toISOString() }, 'issued X.509-SVID');
    }
    return {
      spiffeId: request.spiffeId,
      certPem: outcome.certPem,
      chainPem: outcome.certPem + signer.chainPem,
      rootsPem: state.rootsPem,
      serialHex: serialText,
      notBefore: new Date(outcome.notBefore),
      notAfter: new Date(outcome.notAfter),
      issuerFingerprint: signer.certificate.fingerprint256,
    };
  }
}

/** What a leaf's template needs of its signer: a leaf never outlives the signer's chain. */
function issuerInfo(signer: Signer): IssuerInfo {
  const { certificate, chainNotAfter } = signer;
  return { subject: certificate.subject, subjectKeyId: certificate.subjectKeyId, notBefore: certificate.notBefore, notAfter: chainNotAfter };
}
