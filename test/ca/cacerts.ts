import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Builds an Istio cacerts directory with the openssl CLI, as an operator would
 * (istio's samples/certs Makefile does the same): a root, one or two intermediates.
 */
export interface CacertsOptions {
  /** Intermediates between the root and ca-cert.pem (1 = ca-cert.pem signed by the root). */
  levels?: 1 | 2;
  /** rsa-e3: RSA 2048 with public exponent 3, which meshd must refuse. */
  intermediateKey?: 'ec' | 'rsa' | 'rsa-e3';
  /** Extensions of ca-cert.pem (default: a proper CA). */
  signingExtensions?: string;
  days?: number;
}

function run(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';

export function makeRoot(dir: string, name: string): void {
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}-cert.pem`,
    '-days', '3650', '-subj', `/O=Example/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

export function makeIntermediate(dir: string, name: string, issuer: string, opts: { key?: 'ec' | 'rsa' | 'rsa-e3'; ext?: string; days?: number } = {}): void {
  const keyArgs = opts.key === 'rsa' ? ['-newkey', 'rsa:2048']
    : opts.key === 'rsa-e3' ? ['-newkey', 'rsa:2048', '-pkeyopt', 'rsa_keygen_pubexp:3']
      : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  run(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/O=Example/CN=${name}`], dir);
  writeFileSync(join(dir, `${name}.ext`), opts.ext ?? `${CA_EXT}subjectAltName=URI:spiffe://cluster.local\n`);
  run(['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}-cert.pem`, '-CAkey', `${issuer}-key.pem`, '-CAcreateserial',
    '-days', String(opts.days ?? 730), '-out', `${name}-cert.pem`, '-extfile', `${name}.ext`], dir);
}

/** Returns the cacerts directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) inside `work`. */
export function makeCacerts(work: string, opts: CacertsOptions = {}): string {
  mkdirSync(work, { recursive: true });
  makeRoot(work, 'root');
  const chain: string[] = [];
  let issuer = 'root';
  if (opts.levels === 2) {
    makeIntermediate(work, 'mid', 'root');
    chain.unshift('mid');
    issuer = 'mid';
  }
  makeIntermediate(work, 'signing', issuer, { key: opts.intermediateKey, ext: opts.signingExtensions, days: opts.days });
  const out = join(work, 'cacerts');
  mkdirSync(out, { recursive: true });
  const read = (f: string) => readFileSync(join(work, f), 'utf8');
  writeFileSync(join(out, 'ca-cert.pem'), read('signing-cert.pem'));
  writeFileSync(join(out, 'ca-key.pem'), read('signing-key.pem'));
  writeFileSync(join(out, 'root-cert.pem'), read('root-cert.pem'));
  // Istio's samples: the signing cert, any intermediates, then the root.
  writeFileSync(join(out, 'cert-chain.pem'), [read('signing-cert.pem'), ...chain.map((c) => read(`${c}-cert.pem`)), read('root-cert.pem')].join(''));
  return out;
}
