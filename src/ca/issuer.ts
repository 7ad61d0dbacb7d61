import { performance } from 'node:perf_hooks';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { IssueOptions, IssuedCertificate, IssuedKeyPair, LeafKeyType } from './types.js';
import { CaError, errorMessage } from './errors.js';
import { CsrError, parseCsr } from './csr.js';
import { generateKey, generateP256, LEAF_KEY_TYPES } from './keys.js';
import type { CaMetrics } from './metrics.js';
import { toPem } from './pem.js';
import { randomSerial, serialHex, systemRandom, type RandomSource } from './serial.js';
import type { Signer } from './signer.js';
import { parseSpiffeId, SpiffeIdError } from './spiffe-id.js';
import { leafTemplate, type CertificateTemplate, type IssuerInfo } from './templates.js';
import { resolveTtl, type TtlPolicy } from './ttl-policy.js';
import { validateLeafSvid } from './svid-validator.js';

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
}

/** A request whose identity, DNS names and TTL passed the checks. */
interface CheckedRequest {
  spiffeId: string;
  ttlMs: number;
  dnsNames: string[];
}

/** One certificate between template and validation. */
interface Minting {
  request: CheckedRequest;
  template: CertificateTemplate;
  keyType: LeafKeyType;
  state: SigningState;
  issuer: IssuerInfo;
  now: number;
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
   * P-256 keys are made back to back, then mintAll signs and validates in phases: minted one
   * by one between other work, each key generation and signature finds OpenSSL's curve tables
   * evicted from the CPU cache and costs about twice its tight-loop time (in-process, 32 leaves:
   * 107 µs each one by one, 79 µs in phases). The SDS path batches the requests of one
   * event-loop turn into one call (svid-cache.ts).
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
        const keys = p256.map(() => generateP256());
        const certs = await this.mintAll(p256.map(({ request }, i) => ({ request, spki: keys[i]!.spki })), 'ec-p256');
        p256.forEach(({ at }, i) => {
          const c = certs[i]!;
          results[at] = c instanceof Error ? c : withKey(c, keys[i]!.privateKeyPem, 'ec-p256');
        });
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
   * Templates, signatures, read-back validation and PEM, each phase over the whole batch. The
   * signer and the time are read after key generation, so a rotation in between is honoured
   * and validity starts when the certificates are made. A signer that signs batches gets one
   * call; otherwise each template is signed on its own. One item's failure is its own.
   */
  private async mintAll(items: Array<{ request: CheckedRequest; spki: Buffer }>, keyType: LeafKeyType): Promise<Array<IssuedCertificate | Error>> {
    const state = this.signingState();
    const now = this.deps.clock.now();
    const { signer } = state;
    const { certificate, chainNotAfter } = signer;
    const issuer: IssuerInfo = { subject: certificate.subject, subjectKeyId: certificate.subjectKeyId, notBefore: certificate.notBefore, notAfter: chainNotAfter };
    const templates = items.map(({ request, spki }) => leafTemplate({
      spiffeId: request.spiffeId,
      dnsNames: request.dnsNames,
      spki,
      keyType,
      serial: randomSerial(this.random),
      now,
      ttlMs: request.ttlMs,
      issuer,
    }));
    const signed: Array<Buffer | Error> = signer.signCertificates
      ? await signer.signCertificates(templates)
      : await Promise.all(templates.map((t) => Promise.resolve().then(() => signer.signCertificate(t)).catch(asError)));
    return items.map(({ request }, i) => {
      const der = signed[i];
      if (!Buffer.isBuffer(der)) return der ?? new Error('the signer returned fewer certificates than templates');
      try {
        return this.finish(der, { request, template: templates[i]!, keyType, state, issuer, now });
      } catch (e) {
        return asError(e);
      }
    });
  }

  private finish(der: Buffer, { request, template, keyType, state, issuer, now }: Minting): IssuedCertificate {
    const { signer } = state;
    const check = validateLeafSvid(der, {
      spiffeId: request.spiffeId,
      trustDomain: this.deps.trustDomain,
      dnsNames: request.dnsNames,
      spki: template.spki,
      rsa: keyType === 'rsa-2048',
      issuer,
      now,
    });
    if (!check.valid) {
      this.deps.metrics.validatorRejections.inc();
      this.deps.logger.error({ spiffeId: request.spiffeId, errors: check.errors, issuer: signer.certificate.fingerprint256 },
        'minted certificate failed X509-SVID validation; nothing handed out');
      throw new CaError('CERT_GEN_ERROR', `minted certificate failed X509-SVID validation: ${check.errors.join('; ')}`);
    }
    const certPem = toPem('CERTIFICATE', der);
    const serial = serialHex(template.serial);
    if (this.deps.logger.isLevelEnabled('debug')) {
      this.deps.logger.debug({ spiffeId: request.spiffeId, serial, notAfter: new Date(template.notAfter).toISOString() }, 'issued X.509-SVID');
    }
    return {
      spiffeId: request.spiffeId,
      certPem,
      chainPem: certPem + signer.chainPem,
      rootsPem: state.rootsPem,
      serialHex: serial,
      notBefore: new Date(template.notBefore),
      notAfter: new Date(template.notAfter),
      issuerFingerprint: signer.certificate.fingerprint256,
    };
  }
}
