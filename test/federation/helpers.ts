import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/common/clock.js';
import { createLogger, type Logger } from '../../src/common/logger.js';
import { openCertificateAuthority, type ManagedCertificateAuthority } from '../../src/ca/index.js';
import type { IssuedKeyPair } from '../../src/ca/types.js';
import type { ServingCertificateSource } from '../../src/federation/bundle-endpoint.js';
import { tempDir, type Tap } from '../ca/helpers.js';

export { tempDir };

/** Polls `check` until it is true, or fails after `ms` of real time. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A logger whose JSON lines the test reads. */
export function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A trust domain's CA: meshd's own CA code in a temporary data dir. */
export async function trustDomainCa(t: Tap, trustDomain: string, clock = new ManualClock(Date.now())): Promise<ManagedCertificateAuthority> {
  return openCertificateAuthority({ dataDir: tempDir(t, `meshd-fed-${trustDomain}-`), trustDomain, registry: new Registry(), clock, autoRotate: false });
}

/** A fixed serving identity with a way to switch it, as the composition root would supply. */
export class SwitchableIdentity implements ServingCertificateSource {
  private readonly listeners = new Set<() => void>();
  constructor(private svid: { keyPem: string; chainPem: string }) {}
  current(): { keyPem: string; chainPem: string } {
    return this.svid;
  }
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(svid: IssuedKeyPair | { keyPem: string; chainPem: string }): void {
    this.svid = { keyPem: svid.keyPem, chainPem: svid.chainPem };
    for (const l of this.listeners) l();
  }
}

export interface WebPki {
  caPem: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

/**
 * A Web PKI made with openssl: a CA, and a server certificate it signs for `san` (default
 * 127.0.0.1 and localhost). With `ca`, the server certificate is signed by that PKI's CA instead.
 */
export function webPki(dir: string, name = 'web', san = 'IP:127.0.0.1,DNS:localhost', ca?: WebPki): WebPki {
  const p = (f: string): string => join(dir, `${name}-${f}`);
  const run = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'pipe' }); };
  if (ca) {
    writeFileSync(p('ca.pem'), ca.caPem);
    copyFileSync(ca.caKeyFile, p('ca.key'));
  } else {
    run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'),
      '-days', '2', '-subj', `/O=${name} test web CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/O=${name}`]);
  const ext = p('ext.cnf');
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  run(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '1', '-extfile', ext]);
  return {
    caKeyFile: p('ca.key'),
    caPem: readFileSync(p('ca.pem'), 'utf8'),
    certFile: p('server.pem'),
    keyFile: p('server.key'),
    certPem: readFileSync(p('server.pem'), 'utf8'),
    keyPem: readFileSync(p('server.key'), 'utf8'),
  };
}

export interface RawEndpoint {
  port: number;
  url: string;
  /** Requests received so far. */
  requests: number;
  /** Serve another certificate to new connections. */
  setTls(tls: { keyPem: string; certPem: string }): void;
  close(): Promise<void>;
}

/** A real HTTPS server answering whatever `handler` says: for the hostile bundle endpoints. */
export async function rawHttpsEndpoint(tls: { keyPem: string; certPem: string }, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RawEndpoint> {
  const state = { requests: 0 };
  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    state.requests++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}/`,
    get requests() { return state.requests; },
    setTls: (tls) => server.setSecureContext({ key: tls.keyPem, cert: tls.certPem }),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** The value of one sample in /metrics text, or undefined. */
export async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const v = (metric?.values as Array<{ labels: Record<string, string | number>; value: number }> | undefined)
    ?.find((s) => Object.entries(labels).every(([k, val]) => String(s.labels[k]) === val) && Object.keys(s.labels).length === Object.keys(labels).length);
  return v?.value;
}
