/**
 * Symlinks in a config dir are followed only to files inside the dir (the dir's own path
 * resolved first): Kubernetes ConfigMap volumes and a config path that is itself a symlink
 * work; a link out of the dir is skipped with a warning naming it, in `meshd validate` and
 * on /debug/config like every config message.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigDir } from '../../src/config/load-config-dir.js';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { pa } from './helpers.js';
import { meshdCommand } from '../helpers/meshd-cli.js';
import { REPO } from '../helpers/repo.js';

const ROOT = REPO;

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'meshd-links-')));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a Kubernetes ConfigMap volume (file -> ..data/file, ..data -> ..<timestamp>) is read', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, '..2024_05_01_10_00_00.123'));
  await writeFile(join(dir, '..2024_05_01_10_00_00.123', 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  await symlink('..2024_05_01_10_00_00.123', join(dir, '..data'));
  await symlink(join('..data', 'shop.yaml'), join(dir, 'shop.yaml'));
  const s = await loadConfigDir(dir);
  t.same(s.peerAuthentications.map((p) => [p.meta.namespace, p.mode, p.meta.source.file]), [['shop', 'STRICT', join(dir, 'shop.yaml')]]);
  t.same(s.messages, []);
});

t.test('a config path that is itself a symlink to another dir is read, links inside the target too', async (t) => {
  const base = await tempDir(t);
  await mkdir(join(base, 'v1', 'sub'), { recursive: true });
  await writeFile(join(base, 'v1', 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  await writeFile(join(base, 'v1', 'sub', 'pay.yaml'), pa('pay', 'default', 'DISABLE'));
  await symlink(join('sub', 'pay.yaml'), join(base, 'v1', 'pay.yaml'));
  await symlink('v1', join(base, 'current'));
  const s = await loadConfigDir(join(base, 'current'));
  t.same(s.peerAuthentications.map((p) => [p.meta.namespace, p.mode]), [['pay', 'DISABLE'], ['shop', 'STRICT']]);
  t.same(s.messages, []);
});

t.test('a symlink leading out of the config dir is skipped with a warning naming it', async (t) => {
  const base = await tempDir(t);
  await mkdir(join(base, 'config'));
  await mkdir(join(base, 'elsewhere'));
  await writeFile(join(base, 'config', 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  await writeFile(join(base, 'elsewhere', 'pay.yaml'), pa('pay', 'default', 'DISABLE'));
  await symlink(join('..', 'elsewhere', 'pay.yaml'), join(base, 'config', 'pay.yaml'));
  await symlink('/etc/hostname', join(base, 'config', 'host.yaml'));
  const dir = join(base, 'config');
  const s = await loadConfigDir(dir);
  t.same(s.peerAuthentications.map((p) => p.meta.namespace), ['shop'], 'only the file inside the dir is read');
  t.same(s.messages.map((m) => [m.level, m.source.file, m.source.line, m.message]), [
    ['warning', join(dir, 'host.yaml'), 1, `symlink to /etc/hostname, outside the config dir ${dir}; meshd follows symlinks only to files inside it, so this file is skipped`],
    ['warning', join(dir, 'pay.yaml'), 1, `symlink to ${join(base, 'elsewhere', 'pay.yaml')}, outside the config dir ${dir}; meshd follows symlinks only to files inside it, so this file is skipped`],
  ]);

  const validate = await new Promise<{ code: number; stdout: string }>((done) => {
    execFile(...meshdCommand(['validate', dir]), { cwd: ROOT }, (err, stdout) => done({ code: err ? Number(err.code) : 0, stdout }));
  });
  t.equal(validate.code, 0, 'a warning, not an error');
  t.match(validate.stdout, `Warning: ${join(dir, 'pay.yaml')}:1: symlink to ${join(base, 'elsewhere', 'pay.yaml')}, outside the config dir`);

  const meshd = await startTestMeshd({ configDir: dir });
  t.teardown(() => meshd.close());
  const debug = (await (await fetch(`http://127.0.0.1:${meshd.ports.monitoring}/debug/config`)).json()) as { messages: { source: { file: string }; message: string }[] };
  t.same(debug.messages.map((m) => m.source.file), [join(dir, 'host.yaml'), join(dir, 'pay.yaml')], 'both on /debug/config');
});
