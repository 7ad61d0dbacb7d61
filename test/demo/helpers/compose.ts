import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { parse } from 'yaml';
import { meshdCommand } from '../../helpers/meshd-cli.js';
import { REPO } from '../../helpers/repo.js';

/**
 * docker-compose.yml as the demo tests read it: parsed with YAML merge keys (`<<: *sidecar`, as
 * Compose resolves them), plus the mappings the tests need: a container path back to the file
 * on this machine through a service's bind mounts, the sidecars and their apps.
 */

export const ROOT = REPO;
export const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
export const DEMO_CONFIG = join(ROOT, 'demo', 'config');

export interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  network_mode?: string;
  depends_on?: Record<string, { condition: string }>;
  extra_hosts?: string[];
  healthcheck?: { test: string[] };
  user?: string;
}

export interface ComposeFile {
  services: Record<string, Service>;
  networks: Record<string, { ipam?: { config?: Array<{ subnet?: string; ip_range?: string; gateway?: string }> } }>;
  volumes: Record<string, unknown>;
}

export function loadCompose(): ComposeFile {
  return parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as ComposeFile;
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  /** A bind mount (source is a path on the host, relative to the compose file) or a named volume. */
  bind: boolean;
}

export function mountsOf(service: Service): Mount[] {
  return (service.volumes ?? []).map((spec) => {
    const [source = '', target = '', mode] = spec.split(':');
    const bind = source.startsWith('.') || source.startsWith('/');
    return { source: bind ? resolve(ROOT, source) : source, target, readOnly: mode === 'ro', bind };
  });
}

/** The host file behind a container path, through the service's bind mounts; undefined if not bind-mounted. */
export function hostPath(service: Service, containerPath: string): string | undefined {
  const candidates = mountsOf(service)
    .filter((m) => m.bind && (containerPath === m.target || containerPath.startsWith(`${m.target}/`)))
    .sort((a, b) => b.target.length - a.target.length);
  const m = candidates[0];
  if (!m) return undefined;
  return join(m.source, posix.relative(m.target, containerPath));
}

/** A service's address on a network (its fixed ipv4_address), if it has one. */
export function ipv4Of(service: Service, network = 'mesh'): string | undefined {
  const n = service.networks;
  if (!n || Array.isArray(n)) return undefined;
  return n[network]?.ipv4_address ?? undefined;
}

export interface Sidecar {
  service: string;
  /** The app service whose network namespace it shares. */
  app: string;
  /** `<namespace>.<workload>`, the run-sidecar.sh argument and bootstrap file name. */
  bootstrapName: string;
  namespace: string;
  workload: string;
}

export function sidecarsOf(compose: ComposeFile): Sidecar[] {
  return Object.entries(compose.services)
    .filter(([, s]) => (s.image ?? '').startsWith('envoyproxy/envoy:'))
    .map(([name, s]) => {
      const bootstrapName = s.command?.[0] ?? '';
      const dot = bootstrapName.indexOf('.');
      return {
        service: name,
        app: (s.network_mode ?? '').replace(/^service:/, ''),
        bootstrapName,
        namespace: bootstrapName.slice(0, dot),
        workload: bootstrapName.slice(dot + 1),
      };
    });
}

/** `payments/api-1=payments-api` arguments of the bootstrap service. */
export function bootstrapSpecs(compose: ComposeFile): Array<{ namespace: string; workload: string; serviceAccount: string }> {
  return (compose.services['bootstrap']?.command ?? []).map((spec) => {
    const m = /^([^/]+)\/([^=]+)=(.+)$/.exec(spec);
    if (!m) throw new Error(`bootstrap argument ${spec} is not <namespace>/<workload>=<serviceAccount>`);
    return { namespace: m[1]!, workload: m[2]!, serviceAccount: m[3]! };
  });
}

export interface RunResult { code: number; stdout: string; stderr: string }

export function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((done) => {
    const child = execFile(file, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      done({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The meshd CLI, as `meshd ...` (the built CLI, see test/helpers/meshd-cli.ts). */
export function meshd(...args: string[]): Promise<RunResult> {
  return run(...meshdCommand(args));
}

/** An IPv4 address as a number; NaN when it is not one. */
export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return NaN;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bits = ''] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(ipv4ToInt(base) / size) * size;
  const n = ipv4ToInt(ip);
  return n >= start && n < start + size;
}
