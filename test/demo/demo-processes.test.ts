import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, get, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, loadCompose, run } from './helpers/compose.js';

/**
 * The demo's own programs as plain processes on 127.0.0.1 with ephemeral ports: the workload
 * app (demo/app/server.mjs) and the legacy client (demo/client/legacy.mjs). STRICT is simulated
 * by what Envoy does to a plaintext connection that matches no filter chain: read nothing, close
 * with the request unread, so the kernel sends a reset.
 */

const APP = join(ROOT, 'demo/app/server.mjs');
const CLIENT = join(ROOT, 'demo/client/legacy.mjs');
const SHOP_ID = 'spiffe://cluster.local/ns/shop/sa/shop-web';
const PAYMENTS_ID = 'spiffe://cluster.local/ns/payments/sa/payments-api';

async function startApp(t: Test, env: Record<string, string>): Promise<{ port: number; child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [APP], { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes('\n')) break;
  }
  const m = /^listening on 127\.0\.0\.1:(\d+)/.exec(out);
  if (!m) throw new Error(`app did not start: ${out}`);
  return { port: Number(m[1]), child, line: out.split('\n')[0]! };
}

function listen(t: Test, server: Server): Promise<number> {
  t.teardown(() => server.close());
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** What a STRICT sidecar does to plaintext: the request stays unread, the socket is closed, the kernel resets. */
function strictLike(t: Test): Promise<number> {
  return listen(t, createTcpServer((s: Socket) => s.once('readable', () => s.resetAndDestroy())));
}

function getJson(port: number, path: string, headers: IncomingHttpHeaders = {}): Promise<{ status: number; body: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.startsWith('{') ? JSON.parse(body) : { text: body } }));
    }).on('error', reject);
  });
}

/**
 * Stand-in for the mesh path web-1 → payments (web-1's sidecar on the payments VIP, mTLS,
 * payments' sidecar): forwards the plaintext call to the app, adding the x-forwarded-client-cert
 * payments' sidecar adds after verifying shop's SVID.
 */
function meshPathTo(t: Test, appPort: number): Promise<number> {
  return listen(t, createHttpServer((req, res) => {
    const headers = { ...req.headers, 'x-forwarded-client-cert': `By=${PAYMENTS_ID};Hash=00;Subject="";URI=${SHOP_ID}` };
    httpRequest({ host: '127.0.0.1', port: appPort, path: req.url, headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    }).end();
  }));
}

async function legacy(...args: string[]) {
  return run(process.execPath, [CLIENT, ...args]);
}

// --- the app --------------------------------------------------------------------------------

t.test('the app answers with its name, on 127.0.0.1 only', async (t) => {
  const app = await startApp(t, { WORKLOAD: 'api-1', NAMESPACE: 'payments' });
  t.equal(app.line, `listening on 127.0.0.1:${app.port} as payments/api-1`);
  const r = await getJson(app.port, '/');
  t.same(r, { status: 200, body: { workload: 'api-1', namespace: 'payments', peer: null, xfcc: null } }, 'a plaintext caller: no peer');
  t.same(await getJson(app.port, '/healthz'), { status: 200, body: { text: 'ok\n' } });
  // 127.0.0.2 is loopback too: a socket bound to 0.0.0.0 would answer there; the app must not.
  const sock = connect({ host: '127.0.0.2', port: app.port });
  const [err] = (await once(sock, 'error')) as [NodeJS.ErrnoException];
  t.equal(err.code, 'ECONNREFUSED', 'not reachable on another address: the container address is Envoy\'s');
});

t.test('the app reports the caller its sidecar saw in x-forwarded-client-cert (the element its own sidecar appended)', async (t) => {
  const app = await startApp(t, { WORKLOAD: 'api-1', NAMESPACE: 'payments' });
  // Envoy's APPEND_FORWARD with subject, URI and DNS: an earlier hop's element, then ours.
  const xfcc = `By=spiffe://cluster.local/ns/shop/sa/shop-web;URI=spiffe://cluster.local/ns/edge/sa/gw,By=${PAYMENTS_ID};Hash=4a1c9f;Subject="";URI=${SHOP_ID};DNS=web.shop`;
  const r = await getJson(app.port, '/', { 'x-forwarded-client-cert': xfcc });
  t.equal(r.body['peer'], SHOP_ID);
  t.equal(r.body['xfcc'], xfcc, 'the raw header too');
  const quoted = await getJson(app.port, '/', { 'x-forwarded-client-cert': `By=${PAYMENTS_ID};Subject="O=a,CN=b;c";URI="${SHOP_ID}"` });
  t.equal(quoted.body['peer'], SHOP_ID, 'separators inside quoted values do not split');
  const noUri = await getJson(app.port, '/', { 'x-forwarded-client-cert': `By=${PAYMENTS_ID};Hash=ab` });
  t.equal(noUri.body['peer'], null);
});

t.test('GET /peer calls PEER_URL and returns what it answered, or why it failed', async (t) => {
  const api = await startApp(t, { WORKLOAD: 'api-1', NAMESPACE: 'payments' });
  const web = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop', PEER_URL: `http://127.0.0.1:${api.port}/` });
  t.match(web.line, `, peer http://127.0.0.1:${api.port}/`);
  const r = await getJson(web.port, '/peer');
  t.same(r.status, 200);
  t.same(r.body['upstream'], { url: `http://127.0.0.1:${api.port}/`, status: 200, body: { workload: 'api-1', namespace: 'payments', peer: null, xfcc: null } });

  const refused = await strictLike(t);
  const web2 = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop', PEER_URL: `http://127.0.0.1:${refused}/` });
  const failed = await getJson(web2.port, '/peer');
  t.equal(failed.status, 502, 'a failed upstream call is a 502');
  t.match(failed.body['upstream'], { url: `http://127.0.0.1:${refused}/`, error: /^ECONNRESET/ });

  const noPeer = await getJson(api.port, '/peer');
  t.equal(noPeer.status, 404);
  t.match(noPeer.body['error'], 'has no PEER_URL');
});

t.test('the app exits 0 on SIGTERM (docker stop: it is PID 1 in its container)', async (t) => {
  const app = await startApp(t, { WORKLOAD: 'api-1', NAMESPACE: 'payments' });
  app.child.kill('SIGTERM');
  const [code] = await once(app.child, 'exit');
  t.equal(code, 0);
});

t.test('the app refuses a bad PORT with a message', async (t) => {
  const r = await run(process.execPath, [APP], { env: { ...process.env, PORT: 'http' } });
  t.equal(r.code, 2);
  t.match(r.stderr, 'PORT must be a port number, got "http"');
});

// --- the legacy client ----------------------------------------------------------------------

const LINE = (n: number, name: string) => new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] #${n} ${name.replace(/[->]/g, '\\$&')}\\s+`, 'm');

t.test('against a PERMISSIVE workload (plaintext served) the client prints OK and who answered', async (t) => {
  const app = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop' });
  const r = await legacy('--count', '2', '--interval', '1', `shop=http://127.0.0.1:${app.port}/`);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^legacy-client: plaintext HTTP from outside the mesh \(no sidecar, no client certificate\), one new connection per request, every 1 ms, 2 rounds$/m);
  for (const n of [1, 2]) {
    t.match(r.stdout, new RegExp(`${LINE(n, 'shop').source}OK {10}shop/web-1 answered over plaintext, no client certificate: PERMISSIVE lets clients outside the mesh in$`, 'm'));
  }
  t.match(r.stdout, /^after 2 rounds: shop OK 2\/2$/m);
  t.notMatch(r.stdout, /CHANGED/, 'nothing changed');
});

t.test('against a STRICT workload (plaintext reset) the client prints the refusal and what it means', async (t) => {
  const port = await strictLike(t);
  const r = await legacy('--count', '1', `payments=http://127.0.0.1:${port}/`);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`${LINE(1, 'payments').source}REFUSED {5}connection reset before any response \\(ECONNRESET\\)\\. A STRICT sidecar takes only mTLS: no filter chain matched this plaintext connection, so Envoy closed it \\(response flag NR\\)$`, 'm'));
  t.match(r.stdout, /^after 1 rounds: payments REFUSED 1\/1$/m);
});

t.test('a server that reads the request and closes without answering is a refusal too (socket hang up)', async (t) => {
  const port = await listen(t, createTcpServer((s: Socket) => s.once('data', () => s.end())));
  const r = await legacy('--count', '1', `x=http://127.0.0.1:${port}/`);
  t.match(r.stdout, /#1 x {2}REFUSED {5}connection reset before any response \(ECONNRESET\)/);
});

t.test('when a workload switches to STRICT, the client marks the change', async (t) => {
  // Serves the first two connections like the app, then resets every later one: shop going STRICT.
  let served = 0;
  const port = await listen(t, createHttpServer((req, res) => {
    if (++served > 2) {
      req.socket.resetAndDestroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ workload: 'web-1', namespace: 'shop', peer: null, xfcc: null }));
  }));
  const r = await legacy('--count', '4', '--interval', '1', `shop=http://127.0.0.1:${port}/`);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`${LINE(2, 'shop').source}OK .*in$`, 'm'), 'second round: still OK, no mark');
  t.match(r.stdout, new RegExp(`${LINE(3, 'shop').source}REFUSED .*\\(response flag NR\\) {3}<- CHANGED \\(was OK\\)$`, 'm'));
  t.match(r.stdout, new RegExp(`${LINE(4, 'shop').source}REFUSED .*\\(response flag NR\\)$`, 'm'), 'marked once, not on every refusal');
  t.match(r.stdout, /^after 4 rounds: shop OK 2\/4, REFUSED 2\/4$/m);
});

t.test('shop -> payments: the client shows whom the app called through its sidecar and what that one saw', async (t) => {
  const api = await startApp(t, { WORKLOAD: 'api-1', NAMESPACE: 'payments' });
  const sidecar = await meshPathTo(t, api.port);
  const web = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop', PEER_URL: `http://127.0.0.1:${sidecar}/` });
  const refused = await strictLike(t);
  const webBroken = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop', PEER_URL: `http://127.0.0.1:${refused}/` });
  const r = await legacy('--count', '1', `shop->payments=http://127.0.0.1:${web.port}/peer`, `broken=http://127.0.0.1:${webBroken.port}/peer`);
  t.match(r.stdout, new RegExp(`${LINE(1, 'shop->payments').source}OK .*shop/web-1 answered over plaintext, no client certificate: PERMISSIVE lets clients outside the mesh in; via its sidecar it called payments/api-1, which saw mTLS from ${SHOP_ID}$`, 'm'));
  t.match(r.stdout, new RegExp(`${LINE(1, 'broken').source}HTTP 502 +shop/web-1 answered over plaintext, no client certificate; its own call to http://127.0.0.1:${refused}/ through its sidecar failed: ECONNRESET`, 'm'));
});

t.test('the sample rounds in docs/demo.md are what the client prints for the demo\'s three targets', async (t) => {
  const api = await startApp(t, { WORKLOAD: 'api-1', NAMESPACE: 'payments' });
  const sidecar = await meshPathTo(t, api.port);
  const web = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop', PEER_URL: `http://127.0.0.1:${sidecar}/` });
  const strict = await strictLike(t);
  const r = await legacy('--count', '1', `payments=http://127.0.0.1:${strict}/`, `shop=http://127.0.0.1:${web.port}/`, `shop->payments=http://127.0.0.1:${web.port}/peer`);
  const strip = (line: string) => line.replace(/^\[\d\d:\d\d:\d\d\] #\d+ /, '');
  const printed = r.stdout.split('\n').filter((l) => /^\[/.test(l)).map(strip);
  const doc = readFileSync(join(ROOT, 'docs/demo.md'), 'utf8');
  const sample = /### The legacy client[\s\S]*?\n```\n(\[[\s\S]*?)```/.exec(doc)?.[1]?.trimEnd().split('\n').map(strip) ?? [];
  t.equal(sample.length, 3, 'the page shows one round');
  t.same(printed, sample);
});

t.test('nothing listening yet (a sidecar without listeners) is told apart from a refusal', async (t) => {
  const closedPort = await new Promise<number>((resolve) => {
    const s = createTcpServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const r = await legacy('--count', '1', `payments=http://127.0.0.1:${closedPort}/`);
  t.match(r.stdout, new RegExp(`#1 payments {2}NO LISTENER connection refused: nothing listens on 127\\.0\\.0\\.1:${closedPort} yet\\. The sidecar has not got its listeners from meshd`));
});

t.test('bad arguments: exit 2 with the usage', async (t) => {
  for (const args of [[], ['--count', 'x', 'a=http://127.0.0.1:1/'], ['--interval', '0', 'a=http://127.0.0.1:1/'], ['a=https://127.0.0.1/'], ['noequals'], ['a=not a url']]) {
    const r = await legacy(...args);
    t.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr.split('\n')[0]}`);
    t.match(r.stderr, /^usage: node legacy\.mjs /m);
  }
});

t.test('without --count it runs until SIGTERM, then exits 0 (docker stop)', async (t) => {
  const app = await startApp(t, { WORKLOAD: 'web-1', NAMESPACE: 'shop' });
  const child = spawn(process.execPath, [CLIENT, '--interval', '50', `shop=http://127.0.0.1:${app.port}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (/#3 shop/.test(out)) break;
  }
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
});

t.test('the compose command line of the legacy client is accepted as is', async (t) => {
  const command = loadCompose().services['legacy-client']?.command ?? [];
  t.same(command.slice(0, 2), ['node', '/demo/client/legacy.mjs']);
  // Its hosts exist only on the compose network; one round with a short timeout shows the arguments parse.
  const r = await legacy(...command.slice(2), '--count', '1', '--timeout', '500');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /every 3 s, 1 rounds/);
  for (const target of command.slice(2).filter((a) => a.includes('=http'))) {
    const [name, url] = [target.slice(0, target.indexOf('=')), target.slice(target.indexOf('=') + 1)];
    t.match(r.stdout, new RegExp(`^  ${name.replace(/[->]/g, '\\$&')}\\s+GET ${url.replace(/[./]/g, '\\$&')}$`, 'm'), `target ${name}`);
  }
});
