import t from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, meshd } from './helpers/compose.js';

/**
 * demo/config through the real CLI: `meshd validate` passes it clean, `meshd check` predicts
 * what the demo shows (the legacy client reset by payments, let into shop; shop → payments over
 * mTLS), and every `meshd check` in docs/demo.md prints what the page says it prints, before
 * and after the page's switch of shop to STRICT.
 */

const DOC = join(ROOT, 'docs/demo.md');

t.test('meshd validate demo/config: valid, no warnings', async (t) => {
  const r = await meshd('validate', 'demo/config');
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.equal(r.stdout, '"demo/config" is valid: 3 PeerAuthentications, 2 ServiceEntries, 2 WorkloadEntries\n');
});

interface CheckJson {
  outcome: string;
  serverMode?: string;
  decidedBy: string;
  peerIdentity?: string;
  serverIdentity?: string;
  chain?: string;
  summary: string;
  warnings: string[];
}

async function check(from: string, to: string, configDir = 'demo/config'): Promise<CheckJson> {
  const r = await meshd('check', '--config-dir', configDir, '--from', from, '--to', to, '-o', 'json');
  if (r.code !== 0) throw new Error(`meshd check --from ${from} --to ${to}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CheckJson;
}

t.test('meshd check predicts the demo: legacy → payments reset (NR), legacy → shop plaintext, shop → payments mTLS', async (t) => {
  const [toPayments, toShop, shopToPayments] = await Promise.all([
    check('outside', 'payments/api-1:8080'),
    check('outside', 'shop/web-1:8080'),
    check('shop/web-1', 'payments/api-1:8080'),
  ]);
  t.match(toPayments, { outcome: 'reset', serverMode: 'STRICT', decidedBy: 'PeerAuthentication/payments/default', warnings: [] });
  t.match(toPayments.summary, /response flag NR/);
  t.match(toShop, { outcome: 'plaintext', serverMode: 'PERMISSIVE', decidedBy: 'PeerAuthentication/shop/default', chain: 'inbound|8080|plaintext', warnings: [] });
  t.equal(toShop.peerIdentity, undefined, 'the app sees no client identity');
  t.match(shopToPayments, {
    outcome: 'mtls', serverMode: 'STRICT', chain: 'inbound|8080|mtls', warnings: [],
    peerIdentity: 'spiffe://cluster.local/ns/shop/sa/shop-web',
    serverIdentity: 'spiffe://cluster.local/ns/payments/sa/payments-api',
  });
});

/** The ```console blocks of docs/demo.md running meshd check: command, expected lines, and whether the block follows the STRICT switch. */
function docChecks(): Array<{ command: string[]; expected: string[]; afterSwitch: boolean }> {
  const text = readFileSync(DOC, 'utf8');
  const blocks = [...text.matchAll(/(<!-- test\/demo: output with shop STRICT -->\n)?```console\n([\s\S]*?)```/g)];
  return blocks.flatMap((m) => {
    const lines = m[2]!.trimEnd().split('\n');
    const first = lines[0] ?? '';
    if (!first.startsWith('$ meshd check ')) return [];
    return [{ command: first.slice(2).split(/\s+/).slice(1), expected: lines.slice(1), afterSwitch: m[1] !== undefined }];
  });
}

const SWITCH_FROM = '    mode: PERMISSIVE';
const SWITCH_TO = '    mode: STRICT';

t.test('every meshd check in docs/demo.md prints the lines the page shows', async (t) => {
  const checks = docChecks();
  t.equal(checks.filter((c) => !c.afterSwitch).length, 3, 'three predictions before the switch');
  t.equal(checks.filter((c) => c.afterSwitch).length, 1, 'one after it');
  const doc = readFileSync(DOC, 'utf8');
  t.ok(doc.includes(`\`\`\`yaml\n${SWITCH_FROM}\n\`\`\``) && doc.includes('to `mode: STRICT`'), 'the page tells the reader to make exactly the edit this test makes');

  // The switched config: demo/config with the page's edit to shop.yaml.
  const switched = mkdtempSync(join(tmpdir(), 'meshd-demo-strict-'));
  t.teardown(() => rmSync(switched, { recursive: true, force: true }));
  cpSync(join(ROOT, 'demo/config'), switched, { recursive: true });
  const shop = readFileSync(join(switched, 'shop.yaml'), 'utf8');
  t.equal(shop.split(SWITCH_FROM).length, 2, 'shop.yaml has the line once');
  writeFileSync(join(switched, 'shop.yaml'), shop.replace(SWITCH_FROM, SWITCH_TO));

  await Promise.all(checks.map(async (c) => {
    const args = c.afterSwitch ? c.command.map((a) => (a === 'demo/config' ? switched : a)) : c.command;
    t.ok(args.includes(c.afterSwitch ? switched : 'demo/config'), `${c.command.join(' ')} reads ${c.afterSwitch ? 'the switched config' : 'demo/config'}`);
    const r = await meshd(...args);
    t.equal(r.code, 0, r.stderr);
    const printed = r.stdout.split('\n');
    t.same(printed.slice(0, c.expected.length), c.expected, `meshd ${c.command.join(' ')}${c.afterSwitch ? ' (shop STRICT)' : ''}`);
    t.equal(printed[c.expected.length], '', 'the page shows the whole verdict, up to the walk');
  }));

  const after = await check('shop/web-1', 'payments/api-1:8080', switched);
  t.equal(after.outcome, 'mtls', 'shop → payments still mTLS after the switch');
  const legacyToPayments = await check('outside', 'payments/api-1:8080', switched);
  t.equal(legacyToPayments.outcome, 'reset');
});
