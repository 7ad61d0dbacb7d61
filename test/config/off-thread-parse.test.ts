/**
 * Large config parses run on a worker thread: same snapshot as on the event loop, ended at
 * once by close() (a stopping meshd), and a dying worker costs only the file it was on.
 */
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { buildSnapshot, FileParseCache, type ConfigFile } from '../../src/config/build-snapshot.js';
import { ConfigParseAborted, OffThreadParser, INLINE_PARSE_MAX_BYTES } from '../../src/config/off-thread-parse.js';
import { watchConfigDir } from '../../src/config/watcher.js';
import { pa, yaml } from './helpers.js';
import { testModule } from '../helpers/repo.js';

const examples: ConfigFile[] = readdirSync('examples/config').map((name) => ({ path: `examples/config/${name}`, text: readFileSync(`examples/config/${name}`, 'utf8') }));

/** WorkloadEntries enough to pass `bytes`. */
function manyWorkloads(bytes: number): string {
  let out = '';
  for (let i = 0; out.length < bytes; i++) {
    out += yaml`
      apiVersion: networking.istio.io/v1
      kind: WorkloadEntry
      metadata: {name: w-${i}, namespace: shop}
      spec:
        address: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}
        labels: {app: web}
      ---
    `;
  }
  return out;
}

t.test('a parse on the worker gives the same snapshot as on the event loop, objects frozen', async (t) => {
  const files = [...examples, { path: 'big/many.yaml', text: manyWorkloads(200_000) }, { path: 'big/bad.yaml', text: pa('shop', 'x', 'NOPE') }];
  const parser = new OffThreadParser({ logger: silentLogger() });
  const cache = new FileParseCache();
  await parser.parseInto(files, cache);
  t.equal(parser.workerBatches, 1, 'parsed on a worker');
  t.ok(files.every((f) => cache.get(f) !== undefined), 'every file is in the cache');
  const viaWorker = buildSnapshot(files, undefined, cache);
  const inline = buildSnapshot(files);
  t.same(viaWorker, inline);
  t.ok(viaWorker.workloadEntries.length > 500);
  t.ok(viaWorker.workloadEntries.every((w) => Object.isFrozen(w)), 'frozen like objects parsed here');
  t.ok(viaWorker.messages.some((m) => m.source.file === 'big/bad.yaml' && m.level === 'error'), 'messages come back too');
});

t.test(`up to ${INLINE_PARSE_MAX_BYTES} bytes to parse stay on the event loop; cached files are not parsed again`, async (t) => {
  const parser = new OffThreadParser({ logger: silentLogger() });
  const cache = new FileParseCache();
  await parser.parseInto(examples, cache);
  t.equal(parser.workerBatches, 0);
  const big = { path: 'big.yaml', text: manyWorkloads(INLINE_PARSE_MAX_BYTES + 1) };
  await parser.parseInto([...examples, big], cache);
  t.equal(parser.workerBatches, 1);
  buildSnapshot([...examples, big], undefined, cache);
  await parser.parseInto([...examples, big], cache);
  t.equal(parser.workerBatches, 1, 'nothing new to parse');
});

t.test('close() ends a parse in progress', async (t) => {
  const parser = new OffThreadParser({ logger: silentLogger() });
  const cache = new FileParseCache();
  const big = { path: 'big.yaml', text: manyWorkloads(1_000_000) };
  const parsing = parser.parseInto([big], cache);
  parser.close();
  await t.rejects(parsing, ConfigParseAborted);
  t.equal(cache.get(big), undefined, 'nothing half-parsed is cached');
  await t.rejects(parser.parseInto([{ path: 'other.yaml', text: manyWorkloads(100_000) }], cache), ConfigParseAborted, 'a closed parser parses nothing more');
});

t.test('a worker that dies costs only the file it was on: an error for it, its objects kept', async (t) => {
  const parser = new OffThreadParser({ logger: silentLogger(), inlineMaxBytes: 0, workerUrl: pathToFileURL(testModule(import.meta.url, 'fixtures/dying-parse-worker')) });
  const files = [
    { path: 'a.yaml', text: pa('a', 'default', 'STRICT') },
    { path: 'boom.yaml', text: pa('boom', 'default', 'STRICT') },
    { path: 'c.yaml', text: pa('c', 'default', 'STRICT') },
  ];
  const v1 = buildSnapshot(files.map((f) => ({ ...f, text: f.text.replace('STRICT', 'DISABLE') })));
  const cache = new FileParseCache();
  await parser.parseInto(files, cache);
  t.equal(parser.workerBatches, 2, 'a second worker for the files after it');
  const v2 = buildSnapshot(files, v1, cache);
  t.same(v2.peerAuthentications.map((p) => [p.meta.namespace, p.mode]), [['a', 'STRICT'], ['boom', 'DISABLE'], ['c', 'STRICT']]);
  t.same(v2.messages.filter((m) => m.level === 'error').map((m) => [m.source.file, m.message]), [['boom.yaml', 'cannot parse file: the parse worker exited with code 3']]);
});

t.test('a watcher stopped while a worker parses a reload returns at once and publishes nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-offthread-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'shop.yaml'), pa('shop', 'default', 'STRICT'));
  const logs = new PassThrough();
  const lines: string[] = [];
  logs.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  let published = 0;
  const watcher = await watchConfigDir({ dir, logger: createLogger({ level: 'info', destination: logs }), debounceMs: 10, onChange: () => published++ });
  await writeFile(join(dir, 'many.yaml'), manyWorkloads(1_000_000));
  const deadline = Date.now() + 20_000;
  while (!lines.some((l) => l.includes('parsing config on a worker thread')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(lines.some((l) => l.includes('parsing config on a worker thread')), 'the reload went to a worker');
  t.equal(published, 0, 'still parsing');
  await watcher.stop();
  t.equal(published, 0, 'nothing published');
  t.notOk(lines.some((l) => l.includes('cannot read config dir')), 'the abort is not reported as a failure');
  t.equal(watcher.current.workloadEntries.length, 0);
});
