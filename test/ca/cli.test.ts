import t from 'tap';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { opensslVerify, tempDir, x509 } from './helpers.js';
import { meshdCommand } from '../helpers/meshd-cli.js';
import { REPO } from '../helpers/repo.js';

const run = promisify(execFile);

/**
 * `meshd ...` as a user runs it (the built CLI); never throws, returns the exit code.
 */
async function meshd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(...meshdCommand(args), { cwd: REPO, env: { ...process.env, MESHD_LOG_LEVEL: 'warn' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

t.test('ca issue creates the CA like serve would and writes Istio\'s three files', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  const out = join(dir, 'out');
  const r = await meshd(['ca', 'issue', '--namespace', 'shop', '--service-account', 'web', '--key-type', 'rsa-2048', '--ttl', '2h', '--out', out, '--data-dir', data]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /spiffe:\/\/cluster.local\/ns\/shop\/sa\/web, rsa-2048/);
  t.ok(existsSync(join(data, 'ca/journal.json')) && existsSync(join(data, 'ca/roots/root-1/ca-key.pem')), 'the data dir holds the new CA');
  t.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600, 'key.pem is 0600');
  const chain = readFileSync(join(out, 'cert-chain.pem'), 'utf8');
  const roots = readFileSync(join(out, 'root-cert.pem'), 'utf8');
  const leaf = x509(chain);
  t.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/web');
  t.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(join(out, 'key.pem')))), 'key.pem is the certificate\'s key');
  t.ok(Math.abs(new Date(leaf.validTo).getTime() - Date.now() - 2 * 3_600_000) < 60_000, '--ttl honoured');
  t.ok(opensslVerify(dir, roots, chain).ok, 'openssl verify -CAfile root-cert.pem cert-chain.pem');

  const [pem, spiffe] = await Promise.all([meshd(['ca', 'root', '--data-dir', data]), meshd(['ca', 'root', '--data-dir', data, '--format', 'spiffe'])]);
  t.equal(pem.stdout, roots, 'ca root prints the same bundle');
  const doc = JSON.parse(spiffe.stdout) as { keys: { use: string }[]; spiffe_sequence: number };
  t.equal(doc.keys[0]!.use, 'x509-svid');
  t.equal(doc.spiffe_sequence, 1);
});

t.test('ca rotate-root adds a root at once; SVIDs of both roots verify against the new bundle', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  const before = await meshd(['ca', 'issue', '-n', 'a', '-s', 'old', '--out', join(dir, 'old'), '--data-dir', data]);
  t.equal(before.code, 0, before.stderr);
  const rotated = await meshd(['ca', 'rotate-root', '--overlap', '0s', '--data-dir', data]);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, /prepared root-2 \(ec-p256, SHA-256 [0-9a-f]{64}\)\n\s+in the trust bundle now \(spiffe_sequence 2\); signs from .* \(overlap 0s\)\n\s+root-1 stays trusted until/);
  const after = await meshd(['ca', 'issue', '-n', 'a', '-s', 'new', '--out', join(dir, 'new'), '--data-dir', data]);
  t.equal(after.code, 0, after.stderr);
  const [root, status] = await Promise.all([meshd(['ca', 'root', '--data-dir', data]), meshd(['ca', 'status', '--data-dir', data])]);
  const bundle = root.stdout;
  t.equal(bundle.match(/BEGIN CERTIFICATE/g)?.length, 2, 'two roots in the bundle');
  const oldChain = readFileSync(join(dir, 'old/cert-chain.pem'), 'utf8');
  const newChain = readFileSync(join(dir, 'new/cert-chain.pem'), 'utf8');
  t.not(x509(oldChain).issuer, x509(newChain).issuer, 'signed by different roots');
  t.ok(opensslVerify(dir, bundle, oldChain).ok, 'old SVID verifies');
  t.ok(opensslVerify(dir, bundle, newChain).ok, 'new SVID verifies');
  t.match(status.stdout, /root-1\s+old\s+ec-p256/);
  t.match(status.stdout, /root-2\s+active\s+ec-p256/);
});

t.test('bad requests fail with a message and exit status 1', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  const cases: [string[], RegExp][] = [
    [['ca', 'issue', '-n', 'a', '-s', 'b', '--ttl', '100d', '--out', join(dir, 'o'), '--data-dir', data], /requested TTL 2400h is greater than the max allowed TTL 2160h/],
    [['ca', 'issue', '-n', 'a', '-s', 'b', '--key-type', 'ec-p384', '--out', join(dir, 'o'), '--data-dir', data], /argument 'ec-p384' is invalid. Allowed choices are ec-p256, rsa-2048/],
    [['ca', 'issue', '-n', 'a/b', '-s', 'b', '--out', join(dir, 'o'), '--data-dir', data], /invalid SPIFFE ID .*may only contain/],
    [['ca', 'root', '--data-dir', data, '--trust-domain', 'Bad.Domain'], /trust domain must be lowercase/],
  ];
  const results = await Promise.all(cases.map(([args]) => meshd(args)));
  results.forEach((r, i) => {
    t.equal(r.code, 1, cases[i]![0].join(' '));
    t.match(r.stderr, cases[i]![1]);
  });
  await meshd(['ca', 'rotate-root', '--overlap', '1h', '--data-dir', data]);
  const [twice, mismatched] = await Promise.all([meshd(['ca', 'rotate-root', '--overlap', '1h', '--data-dir', data]), meshd(['ca', 'root', '--data-dir', data, '--trust-domain', 'example.org'])]);
  t.equal(twice.code, 1);
  t.match(twice.stderr, /root-2 is already prepared and starts signing at/);
  t.match(mismatched.stderr, /journal.json belongs to trust domain "cluster.local", but this CA was started for "example.org"/);
});

t.test('every ca command lists its flags with their defaults', async (t) => {
  // root and status share the same flag builder as these two.
  const helps = await Promise.all(['issue', 'rotate-root'].map((c) => meshd(['ca', c, '--help'])));
  for (const h of helps) {
    t.match(h.stdout, /--data-dir <dir>.*\(default: "\.\/\.meshd"/s);
    t.match(h.stdout, /--trust-domain <domain>.*\(default:\s+"cluster.local"\)/s);
  }
  t.match(helps[0]!.stdout, /--ttl <duration>.*\(default: "24h"\)/s);
  t.match(helps[0]!.stdout, /--key-type <type>.*default:\s+"ec-p256"/s);
  t.match(helps[1]!.stdout, /--overlap <duration>.*\(default: "24h"\)/s);
  t.match(helps[1]!.stdout, /--max-workload-cert-ttl <duration>.*\(default: "2160h"\)/s);
});
