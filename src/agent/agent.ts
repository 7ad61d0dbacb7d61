import { readFile } from 'node:fs/promises';
import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { LeafKeyType } from '../ca/types.js';
import { errorMessage } from '../ca/errors.js';
import { createCertificateCall, CsrCallError } from '../csr/csr-client.js';
import { splitPemCertificates } from '../csr/csr-service.js';
import { retryDelay, rotationDueAt, validateRotationPolicy, type BackoffPolicy, type RotationPolicy } from '../common/renewal-policy.js';
import { readCertificateSet, writeCertificateSet, type CertificateSet } from './cert-dir.js';
import { checkCertificateSet, certificateSetFromResponse, type IssuedSummary } from './verify-issued.js';
import { generateWorkloadKey } from './workload-csr.js';
import { workloadSpiffeId } from '../mesh/spiffe-identity.js';
import { RenewalTimer } from '../common/renewal-timer.js';
import { AGENT_BACKOFF } from '../common/defaults.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { chooseCredential, NoCredentialError, type CredentialKind, type MeshdCredential, type TokenRead } from './credentials.js';

/**
 * `meshd agent`: keeps a workload's X.509-SVID in a directory, as istio-agent does for proxyless
 * gRPC (OUTPUT_CERTS) and SPIRE's agent does for its workloads.
 *
 * - The key pair is generated here; only the CSR goes to meshd (istio.v1.auth CSR API over TLS,
 *   meshd verified by its SPIFFE ID). The private key exists only in this process and key.pem.
 * - Proof of identity (credentials.ts): the SVID it holds while that is valid, presented as the
 *   TLS client certificate, as SPIRE's agent renews; the token file only without one (first
 *   start, or the SVID expired). The token file is read again whenever it is needed: a token
 *   rotated on disk keeps working (istio/istio#26225 broke exactly this by caching it).
 * - Renewal at `fraction` of the lifetime ± jitter (istio-agent: SECRET_GRACE_PERIOD_RATIO 0.5,
 *   SECRET_GRACE_PERIOD_RATIO_JITTER 0.01). Each renewal uses a fresh key.
 * - The files are written as a set (cert-dir.ts). A root bundle that changed arrives with the
 *   next certificate and is written with it.
 * - meshd unreachable or refusing: retry with a capped, jittered backoff (at most 4 s by
 *   default, sooner as expiry nears: renewal-policy.ts); the files on disk stay as they are while
 *   still valid. An agent restarted with valid files reuses them. With neither a valid SVID nor
 *   a usable token it says so once (error log), reports credential "none" and keeps retrying.
 * - Trust in meshd: the --ca-root bundle (re-read for every call) plus the root bundle this agent
 *   last received over an authenticated exchange (root-cert.pem in DIR). No trust on first use.
 */
export interface AgentOptions {
  namespace: string;
  serviceAccount: string;
  trustDomain: string;
  tokenFile: string;
  outDir: string;
  /** host:port of meshd's TLS gRPC port. */
  meshdAddress: string;
  /** The SPIFFE ID meshd serves with (spiffe://<td>/ns/istio-system/sa/meshd). */
  meshdSpiffeId: string;
  caRootFile?: string;
  keyType: LeafKeyType;
  /** Requested lifetime; 0 = meshd's default. */
  ttlMs: number;
  rotation: RotationPolicy;
  backoff?: BackoffPolicy;
  logger: Logger;
  clock: Clock;
  random?: () => number;
  /** Called after every set written (tests, the SDS server). */
  onRenewed?: (state: AgentCertificate) => void;
}

export interface AgentCertificate extends IssuedSummary {
  set: CertificateSet;
  /** When the next renewal is due. */
  renewAt: number;
  version: string;
}

export interface AgentStatus {
  current?: Omit<AgentCertificate, 'set'>;
  renewals: number;
  failures: number;
  lastError?: string;
  /** What the last renewal attempt presented (or 'none'); undefined before the first attempt. */
  credential?: CredentialKind;
  /** Successful renewals by what they presented. */
  renewalsBy: Record<'svid' | 'token', number>;
  /** Clock time of the next renewal or retry; undefined while one is under way. */
  nextAttemptAt?: number;
}

export class MeshdAgent {
  readonly spiffeId: string;
  private current: AgentCertificate | undefined;
  private readonly timer: RenewalTimer;
  private stopped = false;
  private running: Promise<void> | undefined;
  private attempt = 0;
  private renewals = 0;
  private failures = 0;
  private lastError: string | undefined;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;
  private firstResolve!: () => void;
  private readonly first: Promise<void>;
  private readonly listeners = new Set<(c: AgentCertificate) => void>();
  private persistedRoots = '';
  private lastCredential: CredentialKind | undefined;
  private readonly renewalsBy = { svid: 0, token: 0 };
  /** Serial of an SVID meshd refused as a credential: the token is used until the next renewal. */
  private refusedSerial: string | undefined;
  private lastLoggedError: string | undefined;

  constructor(private readonly opts: AgentOptions) {
    const problem = validateRotationPolicy(opts.rotation);
    if (problem) throw new Error(problem);
    this.spiffeId = workloadSpiffeId(opts.trustDomain, opts.namespace, opts.serviceAccount);
    this.random = opts.random ?? Math.random;
    this.backoff = opts.backoff ?? AGENT_BACKOFF;
    this.timer = new RenewalTimer(opts.clock, () => void this.renewNow());
    this.first = new Promise((resolve) => (this.firstResolve = resolve));
    if (opts.onRenewed) this.listeners.add(opts.onRenewed);
  }

  /** Adopts valid files already in DIR or starts issuing; resolves at once (see ready()). */
  async start(): Promise<void> {
    const log = this.opts.logger;
    const existing = await readCertificateSet(this.opts.outDir).catch(() => undefined);
    // The bundle this agent wrote after an authenticated exchange stays a trust anchor for meshd
    // even when the certificate beside it has expired (an agent restarted after a long stop).
    if (existing !== undefined) this.persistedRoots = existing.rootCertPem;
    if (existing !== undefined) {
      try {
        const summary = checkCertificateSet(existing, this.spiffeId, this.opts.clock.now());
        this.adopt(existing, summary, 'existing', summary.notBefore);
        log.info({ spiffeId: this.spiffeId, serial: summary.serialHex, notAfter: new Date(summary.notAfter).toISOString(), dir: this.opts.outDir },
          'reusing the valid certificate already in the output directory');
        this.schedule(Math.max(0, this.current!.renewAt - this.opts.clock.now()));
        return;
      } catch (e) {
        log.warn({ dir: this.opts.outDir, err: errorMessage(e) }, 'the certificate in the output directory cannot be reused; requesting a new one');
      }
    }
    this.schedule(0);
  }

  /** The identity this agent keeps a certificate for. */
  identity(): { spiffeId: string; trustDomain: string; namespace: string; serviceAccount: string } {
    return { spiffeId: this.spiffeId, trustDomain: this.opts.trustDomain, namespace: this.opts.namespace, serviceAccount: this.opts.serviceAccount };
  }

  /** Resolves once a valid certificate set is on disk. */
  ready(): Promise<void> {
    return this.first;
  }

  certificate(): AgentCertificate | undefined {
    return this.current;
  }

  /** The agent's clock (its health and metrics judge validity by it). */
  clockNow(): number {
    return this.opts.clock.now();
  }

  status(): AgentStatus {
    const out: AgentStatus = { renewals: this.renewals, failures: this.failures, renewalsBy: { ...this.renewalsBy } };
    if (this.lastCredential !== undefined) out.credential = this.lastCredential;
    if (this.timer.dueAt !== undefined) out.nextAttemptAt = this.timer.dueAt;
    if (this.current) {
      const { set: _set, ...rest } = this.current;
      out.current = rest;
    }
    if (this.lastError !== undefined) out.lastError = this.lastError;
    return out;
  }

  /** Subscribes to new certificate sets; returns an unsubscribe. */
  onRenewed(listener: (c: AgentCertificate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Renews now (e.g. a trust bundle change was announced); concurrent calls share one request. */
  renewNow(): Promise<void> {
    this.timer.clear();
    this.running ??= this.renew().finally(() => { this.running = undefined; });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer.stop();
    await this.running?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    this.timer.in(delayMs);
  }

  /**
   * `createdAt` is when the certificate arrived (for files found on disk: notBefore). meshd
   * backdates notBefore for clock skew, so measuring the lifetime from receipt keeps short
   * lifetimes honest (a 10 s certificate renews after ~5 s, not after the 2 minute backdate).
   */
  private adopt(set: CertificateSet, summary: IssuedSummary, version: string, createdAt: number): void {
    const start = Math.max(summary.notBefore, Math.min(createdAt, summary.notAfter - 1));
    const renewAt = rotationDueAt(start, summary.notAfter, this.opts.rotation, this.random());
    this.current = { ...summary, set, renewAt, version };
    this.firstResolve();
  }

  /** Roots that may sign meshd's serving certificate: --ca-root (re-read now) plus the bundle last received. */
  async trustedRoots(): Promise<string> {
    const parts: string[] = [];
    if (this.opts.caRootFile !== undefined) {
      try {
        parts.push(...splitPemCertificates(await readFile(this.opts.caRootFile, 'utf8')));
      } catch (e) {
        throw new Error(`cannot read --ca-root ${this.opts.caRootFile}: ${errorMessage(e)}`);
      }
    }
    if (this.current) parts.push(...splitPemCertificates(this.current.set.rootCertPem));
    parts.push(...splitPemCertificates(this.persistedRoots));
    const unique = [...new Set(parts)];
    if (unique.length === 0) {
      throw new Error(`no trust anchor for meshd: pass --ca-root with meshd's root bundle (GET /trust-bundle?format=pem on its monitoring port)`);
    }
    return unique.join('');
  }

  private async readToken(): Promise<TokenRead> {
    let raw: string;
    try {
      raw = await readFile(this.opts.tokenFile, 'utf8');
    } catch (e) {
      return { error: `cannot read --token-file ${this.opts.tokenFile}: ${errorMessage(e)}` };
    }
    const token = raw.trim();
    if (token === '') return { error: `--token-file ${this.opts.tokenFile} is empty` };
    return { token };
  }

  /**
   * What to present to meshd now: the SVID while it is valid, else the token file's token.
   * Throws NoCredentialError when neither is usable. The xDS proxy asks for every new stream.
   */
  async credential(): Promise<MeshdCredential> {
    const now = this.opts.clock.now();
    const c = this.current;
    const held = c === undefined ? undefined : { keyPem: c.set.keyPem, chainPem: c.set.certChainPem, notBefore: c.notBefore, notAfter: c.notAfter };
    const refused = c !== undefined && this.refusedSerial === c.serialHex;
    // The token file is read only when the SVID cannot serve.
    if (held !== undefined && !refused && now >= held.notBefore && now < held.notAfter) {
      return chooseCredential(now, held, false, { error: 'unused' });
    }
    return chooseCredential(now, held, refused, await this.readToken());
  }

  /** The credential the agent would present now, and why when there is none (health, metrics). */
  async credentialState(): Promise<{ kind: CredentialKind; detail?: string }> {
    try {
      return { kind: (await this.credential()).kind };
    } catch (e) {
      if (e instanceof NoCredentialError) return { kind: 'none', detail: e.message };
      throw e;
    }
  }

  private noteCredential(kind: CredentialKind, detail?: string): void {
    if (kind === this.lastCredential) return;
    const before = this.lastCredential;
    this.lastCredential = kind;
    const log = this.opts.logger;
    if (kind === 'none') {
      log.error({ spiffeId: this.spiffeId, reason: detail }, 'no valid credential for meshd: neither a valid SVID nor a usable join token; retrying until one is available');
    } else if (before !== undefined) {
      log.info({ spiffeId: this.spiffeId, from: before, to: kind }, kind === 'svid' ? 'presenting the SVID to meshd again' : 'presenting the join token to meshd (no valid SVID)');
    }
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const { opts } = this;
    const log = opts.logger;
    let presented: MeshdCredential | undefined;
    const presentedSerial = this.current?.serialHex;
    try {
      let roots: string;
      [presented, roots] = await Promise.all([
        this.credential().catch((e: unknown) => {
          if (e instanceof NoCredentialError) this.noteCredential('none', e.message);
          throw e;
        }),
        this.trustedRoots(),
      ]);
      this.noteCredential(presented.kind);
      const key = await generateWorkloadKey(opts.keyType, this.spiffeId);
      const response = await createCertificateCall({
        address: opts.meshdAddress,
        trustedRootsPem: roots,
        serverSpiffeId: opts.meshdSpiffeId,
        ...(presented.kind === 'svid'
          ? { clientCertificate: { keyPem: presented.keyPem, chainPem: presented.chainPem } }
          : { token: presented.token }),
        csrPem: key.csrPem,
        validitySeconds: Math.ceil(opts.ttlMs / 1000),
      });
      if (this.stopped) return;
      const set = certificateSetFromResponse(response.certChain, key.keyPem);
      const summary = checkCertificateSet(set, this.spiffeId, opts.clock.now());
      const version = await writeCertificateSet(opts.outDir, set, opts.clock.now());
      const rootsChanged = this.current !== undefined && this.current.set.rootCertPem !== set.rootCertPem;
      this.adopt(set, summary, version, opts.clock.now());
      this.attempt = 0;
      this.renewals += 1;
      this.renewalsBy[presented.kind] += 1;
      this.refusedSerial = undefined;
      this.lastError = undefined;
      this.lastLoggedError = undefined;
      log.info({
        spiffeId: this.spiffeId, serial: summary.serialHex, notAfter: new Date(summary.notAfter).toISOString(),
        renewAt: new Date(this.current!.renewAt).toISOString(), version, rootsChanged, presented: presented.kind,
      }, 'workload certificate written');
      for (const l of this.listeners) {
        try { l(this.current!); } catch (e) { log.error({ err: errorMessage(e) }, 'certificate listener failed'); }
      }
      this.schedule(Math.max(0, this.current!.renewAt - opts.clock.now()));
    } catch (e) {
      if (this.stopped) return;
      this.failures += 1;
      const message = e instanceof CsrCallError ? e.message : errorMessage(e);
      this.lastError = message;
      // meshd no longer takes this SVID as proof (a replaced CA, say): the token takes over.
      if (e instanceof CsrCallError && e.code === grpcStatus.UNAUTHENTICATED && presented?.kind === 'svid' && presentedSerial !== undefined) {
        this.refusedSerial = presentedSerial;
      }
      const now = opts.clock.now();
      const delay = retryDelay(this.attempt, this.backoff, this.random(), now, this.current?.notAfter);
      this.attempt += 1;
      const valid = this.current !== undefined && this.current.notAfter > now;
      // Bounded log volume while meshd is away: a new reason is logged at once, a repeated one
      // at attempts 1, 2, 4, 8, … (one line a minute or so at the 4 s cap).
      const powerOfTwo = (this.attempt & (this.attempt - 1)) === 0;
      if (message !== this.lastLoggedError || powerOfTwo) {
        this.lastLoggedError = message;
        log.warn({
          err: message, retryInMs: delay, attempt: this.attempt, presented: presented?.kind ?? 'none',
          keeping: valid ? `the current certificate (valid until ${new Date(this.current!.notAfter).toISOString()})` : 'nothing: no valid certificate',
        }, 'certificate request failed; retrying with backoff');
      }
      this.schedule(delay);
    }
  }
}
