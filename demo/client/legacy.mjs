// The demo's legacy client: a program OUTSIDE the mesh (no sidecar, no certificate) that keeps
// calling mesh workloads in plaintext HTTP and says, one line per request, what it got and what
// that means. node:http only.
//
//   node legacy.mjs [--interval <ms>] [--count <n>] [--timeout <ms>] <name>=<url> ...
//
//   --interval  pause between rounds (default 3000)
//   --count     rounds to run, then print a summary and exit 0 (default 0 = for ever)
//   --timeout   per request (default 5000)
//
// Every request opens a new connection (no keep-alive), so each line shows the policy in force
// now: a kept-alive plaintext connection would outlive a switch to STRICT.
import { get } from 'node:http';

const USAGE = 'usage: node legacy.mjs [--interval <ms>] [--count <n>] [--timeout <ms>] <name>=<url> ...';

function fail(message) {
  console.error(`legacy-client: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { interval: 3000, count: 0, timeout: 5000, targets: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const flag = /^--(interval|count|timeout)(?:=(.*))?$/.exec(arg);
    if (flag) {
      const value = flag[2] ?? argv[++i];
      const n = Number(value);
      if (value === undefined || !/^\d+$/.test(value) || (flag[1] !== 'count' && n === 0)) fail(`--${flag[1]} needs a whole number${flag[1] === 'count' ? '' : ' above 0'}, got ${JSON.stringify(value)}`);
      opts[flag[1]] = n;
      continue;
    }
    const eq = arg.indexOf('=');
    if (arg.startsWith('-') || eq <= 0) fail(`unexpected argument ${JSON.stringify(arg)}`);
    let url;
    try {
      url = new URL(arg.slice(eq + 1));
    } catch {
      fail(`${JSON.stringify(arg.slice(eq + 1))} is not a URL`);
    }
    if (url.protocol !== 'http:') fail(`${url.href}: only plaintext http:// (this client has no certificate to offer)`);
    opts.targets.push({ name: arg.slice(0, eq), url: url.href });
  }
  if (opts.targets.length === 0) fail('no targets');
  return opts;
}

/** One plaintext GET on a fresh connection. Resolves to {status, body} or {error}; never rejects. */
function request(url, timeoutMs) {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, headers: { connection: 'close', 'user-agent': 'meshd-demo-legacy-client' }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (err) => resolve({ error: err, status: res.statusCode, midResponse: true }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve({ error: err }));
  });
}

function who(body) {
  return body && typeof body === 'object' && body.workload ? `${body.namespace}/${body.workload}` : undefined;
}

/** What a workload's sidecar saw of its caller: mTLS from <id>, or plaintext. */
function callerSeen(body) {
  return body.peer ? `mTLS from ${body.peer}` : 'plaintext (no client certificate)';
}

/** {verdict, text}: the verdict is what the summary counts and change detection compares. */
function explain(result, url) {
  const where = new URL(url).host;
  if (result.error) {
    const code = result.error.code ?? 'ERROR';
    if (result.midResponse) return { verdict: 'BROKEN', text: `HTTP ${result.status}, then the connection broke mid-response (${code}: ${result.error.message})` };
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      return {
        verdict: 'REFUSED',
        text: `connection reset before any response (${code}). A STRICT sidecar takes only mTLS: no filter chain matched this plaintext connection, so Envoy closed it (response flag NR)`,
      };
    }
    if (code === 'ECONNREFUSED') {
      return {
        verdict: 'NO LISTENER',
        text: `connection refused: nothing listens on ${where} yet. The sidecar has not got its listeners from meshd (docker compose logs <app>-sidecar; curl localhost:15014/debug/connections)`,
      };
    }
    if (code === 'ETIMEDOUT') return { verdict: 'TIMEOUT', text: `${result.error.message} from ${where}` };
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { verdict: 'NO DNS', text: `${where}: name not found (${code})` };
    return { verdict: 'ERROR', text: `${code}: ${result.error.message}` };
  }
  let body;
  try {
    body = JSON.parse(result.body);
  } catch {
    body = undefined;
  }
  const ok = result.status >= 200 && result.status < 300;
  const verdict = ok ? 'OK' : `HTTP ${result.status}`;
  const answeredBy = who(body);
  if (!answeredBy) return { verdict, text: `HTTP ${result.status}: ${result.body.trim().slice(0, 120) || '(empty body)'}` };
  let text = body.peer
    ? `${answeredBy} answered; its sidecar saw mTLS from ${body.peer}`
    : `${answeredBy} answered over plaintext, no client certificate${ok ? ': PERMISSIVE lets clients outside the mesh in' : ''}`;
  if (body.upstream) {
    const up = body.upstream;
    const upWho = who(up.body);
    if (up.error) text += `; its own call to ${up.url} through its sidecar failed: ${up.error}`;
    else if (upWho) text += `; via its sidecar it called ${upWho}, which saw ${callerSeen(up.body)}${up.status === 200 ? '' : ` (HTTP ${up.status})`}`;
    else text += `; its call to ${up.url} got HTTP ${up.status}: ${String(typeof up.body === 'string' ? up.body : JSON.stringify(up.body)).trim().slice(0, 120)}`;
  } else if (body.error) {
    text += `; ${body.error}`;
  }
  return { verdict, text };
}

function clock() {
  return new Date().toISOString().slice(11, 19);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const width = Math.max(...opts.targets.map((t) => t.name.length));
  const every = opts.interval >= 1000 && opts.interval % 1000 === 0 ? `${opts.interval / 1000} s` : `${opts.interval} ms`;
  console.log(`legacy-client: plaintext HTTP from outside the mesh (no sidecar, no client certificate), one new connection per request, every ${every}${opts.count > 0 ? `, ${opts.count} rounds` : ''}`);
  for (const t of opts.targets) console.log(`  ${t.name.padEnd(width)}  GET ${t.url}`);

  const last = new Map();
  const tally = new Map(opts.targets.map((t) => [t.name, new Map()]));
  for (let round = 1; opts.count === 0 || round <= opts.count; round++) {
    for (const t of opts.targets) {
      const { verdict, text } = explain(await request(t.url, opts.timeout), t.url);
      const previous = last.get(t.name);
      const changed = previous !== undefined && previous !== verdict ? `   <- CHANGED (was ${previous})` : '';
      last.set(t.name, verdict);
      const counts = tally.get(t.name);
      counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
      console.log(`[${clock()}] #${round} ${t.name.padEnd(width)}  ${verdict.padEnd(11)} ${text}${changed}`);
    }
    if (opts.count === 0 || round < opts.count) await new Promise((r) => setTimeout(r, opts.interval));
  }
  const summary = opts.targets.map((t) => `${t.name} ${[...tally.get(t.name)].map(([v, n]) => `${v} ${n}/${opts.count}`).join(', ')}`);
  console.log(`after ${opts.count} rounds: ${summary.join('; ')}`);
}

// PID 1 in a container gets no default signal handlers: exit on docker stop at once.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));

await main();
