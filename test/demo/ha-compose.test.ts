import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { createStoreKeyFile } from '../../src/store/key-file.js';
import { runMeshd, startServeProcess } from '../e2e/helpers/serve-process.js';
import { repoPath } from '../helpers/repo.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { systemRandom } from '../store/helpers/store.js';
import { inCidr, run, type ComposeFile, type Service } from './helpers/compose.js';

/**
 * demo/ha/docker-compose.yml (PostgreSQL and two meshd replicas), checked without Docker: the
 * Compose schema accepts it, images are pinned, both replicas read the same store with the same
 * key file and keep their own data dir; and its commands, run here against a real PostgreSQL
 * with the same environment, apply the demo config and start two replicas that serve one CA.
 */
const FILE = repoPath('demo/ha/docker-compose.yml');
const HERE = dirname(FILE);
const compose = parse(readFileSync(FILE, 'utf8'), { merge: true }) as ComposeFile;
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`demo/ha/docker-compose.yml has no service ${name}`);
  return s;
};
const replicas = ['meshd-1', 'meshd-2'];

t.test('the Compose schema accepts the file (docker-compose config)', async (t) => {
  const r = await run('docker-compose', ['-f', FILE, 'config', '-q']);
  t.equal(r.code, 0, r.stderr);
});

t.test('images are pinned and meshd\'s is built from this checkout', async (t) => {
  for (const [name, s] of Object.entries(compose.services)) {
    t.match(s.image, /:[\w.-]+$/, `${name}: ${s.image} has a tag`);
    t.notMatch(s.image, /:latest$/, `${name}: not :latest`);
    if (s.build) t.ok(existsSync(join(resolve(HERE, s.build.context), s.build.dockerfile ?? 'Dockerfile')), `${name}: its Dockerfile exists`);
  }
});

t.test('both replicas: one store, one key file (read-only), a data dir each, started after the store and the config', async (t) => {
  const [a, b] = replicas.map(svc) as [Service, Service];
  t.same(a.environment, b.environment, 'the same store environment');
  const url = new URL(a.environment!.MESHD_STORE!);
  t.ok(compose.services[url.hostname], `the store URL names the ${url.hostname} service`);
  const keyFile = a.environment!.MESHD_STORE_KEY_FILE!;
  for (const name of replicas) {
    const s = svc(name);
    const keyMount = (s.volumes ?? []).find((v) => keyFile.startsWith(`${v.split(':')[1]}/`));
    t.match(keyMount, /^store-key:\/keys:ro$/, `${name}: the key file comes from the shared store-key volume, read-only`);
    t.same(Object.keys(s.depends_on ?? {}).sort(), ['config-apply', 'db'], `${name}: waits for the store and the config`);
    t.equal(s.depends_on?.['config-apply']?.condition, 'service_completed_successfully');
  }
  const dataVolume = (s: Service): string | undefined => (s.volumes ?? []).find((v) => v.split(':')[1] === '/data')?.split(':')[0];
  t.not(dataVolume(a), dataVolume(b), 'each replica keeps its own data dir');
  const cfg = compose.networks.ha?.ipam?.config?.[0];
  const addresses = replicas.map((n) => (svc(n).networks as Record<string, { ipv4_address?: string }>).ha?.ipv4_address ?? '');
  for (const ip of addresses) {
    t.ok(inCidr(ip, cfg!.subnet!) && !inCidr(ip, cfg!.ip_range!), `${ip} is a fixed address Docker never hands out`);
  }
  const published = replicas.flatMap((n) => svc(n).ports ?? []);
  t.same(published, ['127.0.0.1:15014:15014', '127.0.0.1:15015:15014'], 'each replica\'s HTTP port on loopback, on its own host port');
});

t.test('its commands against a real PostgreSQL: config apply, then two replicas serving one CA', async (t) => {
  const pg = await startPostgres(t);
  const dir = await mkdtemp(join(tmpdir(), 'meshd-ha-compose-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'store.key');
  await createStoreKeyFile(keyFile, systemRandom);
  const env = { MESHD_STORE: await pg.createDatabase(), MESHD_STORE_KEY_FILE: keyFile };

  const apply = svc('config-apply');
  const configMount = (apply.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === '/demo/config');
  const configDir = resolve(HERE, configMount![0]!);
  t.equal(configDir, repoPath('demo/config'), 'config-apply applies the demo\'s config');
  const args = apply.command!.map((a) => (a === '/demo/config' ? configDir : a));
  const applied = await runMeshd(args, env);
  t.equal(applied.code, 0, applied.stderr);
  t.match(applied.stdout, /applied as version 1/);

  const started = await Promise.all(replicas.map(async (name, i) => {
    const command = svc(name).command!;
    t.same(command.slice(0, 3), ['serve', '--data-dir', '/data'], `${name} runs meshd serve`);
    const serve = await startServeProcess(['--data-dir', join(dir, `data-${i}`)], env);
    t.teardown(() => serve.terminate());
    return serve;
  }));
  const bundles = await Promise.all(started.map(async (s) => (await fetch(`http://127.0.0.1:${s.ports.monitoring}/trust-bundle?format=pem`)).text()));
  t.match(bundles[0], /^-----BEGIN CERTIFICATE-----/);
  t.equal(bundles[1], bundles[0], 'both replicas serve the same trust bundle from the store');
});
