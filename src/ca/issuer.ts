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
    const started = performance.now();
    const keyType = opts.keyType ?? 'ec-p256';
    this.deps.metrics.csrCount.inc();
    try {
      if (!LEAF_KEY_TYPES.includes(keyType)) throw new CaError('CSR_ERROR', `unsupported leaf key type "${String(keyType)}" (supported: ${LEAF_KEY_TYPES.join(', ')})`);
      const request = this.checkRequest(opts);
      this.signingState(); // refuse before spending ~140 ms on an RSA key
      const key = keyType === 'ec-p256' ? generateP256() : await generateKey(keyType);
      const minted = this.mint(request, key.spki, keyType);
      const issued = 'then' in minted ? await minted : minted;
      this.succeeded(keyType, 'key', started);
      return { ...issued, keyPem: key.privateKeyPem, keyType };
    } catch (e) {
      throw this.failed(e);
    }
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
      const issued = await this.mint(request, csr.spki, csr.keyType);
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

  /**
   * Template, signature, read-back validation, PEM. Synchronous when the signer is (a key in
   * this process signs inline): at fleet scale each avoided promise hop is a few µs per SVID.
   */
  private mint(request: CheckedRequest, spki: Buffer, keyType: LeafKeyType): IssuedCertificate | Promise<IssuedCertificate> {
    // Read the signer and the time after any slow key generation, so a rotation in
    // between is honoured and validity starts when the certificate is made.
    const state = this.signingState();
    const now = this.deps.clock.now();
    const { certificate, chainNotAfter } = state.signer;
    const issuer: IssuerInfo = { subject: certificate.subject, subjectKeyId: certificate.subjectKeyId, notBefore: certificate.notBefore, notAfter: chainNotAfter };
    const template = leafTemplate({
      spiffeId: request.spiffeId,
      dnsNames: request.dnsNames,
      spki,
      keyType,
      serial: randomSerial(this.random),
      now,
      ttlMs: request.ttlMs,
      issuer,
    });
    const minting: Minting = { request, template, keyType, state, issuer, now };
    const signed = state.signer.signCertificate(template);
    return Buffer.isBuffer(signed) ? this.finish(signed, minting) : Promise.resolve(signed).then((der) => this.finish(der, minting));
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
