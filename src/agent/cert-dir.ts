import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The agent's output directory, written as Kubernetes writes projected volumes
 * (kubelet AtomicWriter), so the three files change together:
 *
 *   DIR/..2026_05_01_12_00_00.123456789/{cert-chain.pem,key.pem,root-cert.pem}   one version
 *   DIR/..data -> ..2026_05_01_12_00_00.123456789                               swapped by rename(2)
 *   DIR/cert-chain.pem -> ..data/cert-chain.pem   (and key.pem, root-cert.pem)  never change
 *
 * A new version is written and fsynced in a fresh directory, then `..data` is replaced in one
 * rename of a symlink. Any open of DIR/<file> therefore gets a whole file of one version, never
 * half a file, and never a file of a version whose siblings are not all on disk. Readers that
 * resolve `..data` once (readCertificateSet, Envoy's and istio-agent's watchers of `..data`) get a
 * matching set. gRPC's file_watcher opens the three paths separately (in parallel, in the same
 * tick): only a swap landing between those two open(2) calls, microseconds apart, can pair two
 * versions, and its next refresh reads a matching set (docs/proxyless-grpc.md).
 *
 * The previous version stays on disk until the next swap, so a reader that resolved `..data` just
 * before a swap can still open its files.
 */
export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const KEY_FILE = 'key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';
export const DATA_LINK = '..data';
const FILES = [CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE] as const;

export interface CertificateSet {
  /** Leaf then intermediates. */
  certChainPem: string;
  /** PKCS#8 PEM; written 0600. */
  keyPem: string;
  /** Every trusted root. */
  rootCertPem: string;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `..2006_01_02_15_04_05.` as the kubelet names versions (mkdtemp appends a random suffix). */
function versionDirPrefix(nowMs: number): string {
  const d = new Date(nowMs);
  return `..${d.getUTCFullYear()}_${pad(d.getUTCMonth() + 1)}_${pad(d.getUTCDate())}_${pad(d.getUTCHours())}_${pad(d.getUTCMinutes())}_${pad(d.getUTCSeconds())}.`;
}

async function writeDurable(path: string, data: string, mode: number): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(path, mode); // the umask may have narrowed or widened nothing we want
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function replaceSymlink(dir: string, name: string, target: string): Promise<void> {
  const tmp = join(dir, `${name}_tmp`);
  await unlink(tmp).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
  await symlink(target, tmp);
  await rename(tmp, join(dir, name));
}

async function linkTarget(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch {
    return undefined;
  }
}

/** Writes a new version and swaps it in; returns the version directory's name. */
export async function writeCertificateSet(dir: string, set: CertificateSet, nowMs: number): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const versionPath = await mkdtemp(join(dir, versionDirPrefix(nowMs)));
  const version = versionPath.slice(dir.length + 1).replace(/^\/+/, '');
  await chmod(versionPath, 0o755);
  await writeDurable(join(versionPath, CERT_CHAIN_FILE), set.certChainPem, 0o644);
  await writeDurable(join(versionPath, KEY_FILE), set.keyPem, 0o600);
  await writeDurable(join(versionPath, ROOT_CERT_FILE), set.rootCertPem, 0o644);
  await fsyncDir(versionPath);

  const previous = await linkTarget(join(dir, DATA_LINK));
  await replaceSymlink(dir, DATA_LINK, version);
  for (const f of FILES) {
    const want = `${DATA_LINK}/${f}`;
    if ((await linkTarget(join(dir, f))) === want) continue;
    // First write, or a plain file from another tool: replaced by the stable symlink in one rename.
    const st = await lstat(join(dir, f)).catch(() => undefined);
    if (st?.isDirectory()) throw new Error(`${join(dir, f)} is a directory; refusing to replace it`);
    await replaceSymlink(dir, f, want);
  }
  await fsyncDir(dir);

  // Keep the version just replaced (a reader may have resolved ..data to it); drop older ones.
  for (const entry of await readdir(dir)) {
    if (!entry.startsWith('..') || entry === DATA_LINK || entry === version || entry === previous) continue;
    if (!/^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\./.test(entry)) continue;
    await rm(join(dir, entry), { recursive: true, force: true });
  }
  return version;
}

/** Reads one consistent version (resolves `..data` once); undefined when there is none. */
export async function readCertificateSet(dir: string): Promise<CertificateSet | undefined> {
  const version = await linkTarget(join(dir, DATA_LINK));
  if (version === undefined) return undefined;
  try {
    const base = join(dir, version);
    const [certChainPem, keyPem, rootCertPem] = await Promise.all(FILES.map((f) => readFile(join(base, f), 'utf8')));
    return { certChainPem: certChainPem!, keyPem: keyPem!, rootCertPem: rootCertPem! };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
