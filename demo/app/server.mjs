// The demo's workload app: a tiny HTTP server (node:http only) that says who it is and who its
// sidecar says called it.
//
// It listens on 127.0.0.1 only, never on the container address: that address belongs to the
// Envoy sidecar sharing its network namespace (docs/deployment-model.md). Reaching the app
// around the sidecar would make STRICT meaningless.
//
//   GET /       {"workload", "namespace", "peer": <caller's SPIFFE ID or null>, "xfcc": <raw header>}
//   GET /peer   the same, plus "upstream": what PEER_URL answered (called through the sidecar)
//   GET /healthz "ok"
//
// Environment: WORKLOAD, NAMESPACE (what it reports), PORT (0 = any free port, for tests),
// PEER_URL (optional; e.g. http://api.payments.svc.cluster.local:8080/, mapped by extra_hosts to
// the service's loopback VIP where the sidecar's outbound listener upgrades the call to mTLS).
// Prints "listening on 127.0.0.1:<port>" once ready.
import { createServer, get } from 'node:http';

const workload = process.env.WORKLOAD ?? 'app';
const namespace = process.env.NAMESPACE ?? 'default';
const peerUrl = process.env.PEER_URL;
const port = Number(process.env.PORT ?? '8080');
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`server: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

/**
 * The caller's SPIFFE ID from x-forwarded-client-cert. Envoy (forward_client_cert_details
 * APPEND_FORWARD) appends one element per mTLS hop, elements separated by ",", fields by ";",
 * values optionally double-quoted; the last element is the one our own sidecar added.
 * Absent header (plaintext caller) → null.
 */
function peerFromXfcc(header) {
  if (!header) return null;
  const elements = splitOutsideQuotes(header, ',');
  const last = elements[elements.length - 1] ?? '';
  for (const field of splitOutsideQuotes(last, ';')) {
    const eq = field.indexOf('=');
    if (eq > 0 && field.slice(0, eq).trim().toLowerCase() === 'uri') return unquote(field.slice(eq + 1).trim());
  }
  return null;
}

function splitOutsideQuotes(text, separator) {
  const parts = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted && i + 1 < text.length) {
      current += c + text[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === separator && !quoted) {
      parts.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts;
}

function unquote(value) {
  return value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
}

function whoAmI(req) {
  const xfcc = req.headers['x-forwarded-client-cert'];
  const raw = Array.isArray(xfcc) ? xfcc.join(',') : xfcc;
  return { workload, namespace, peer: peerFromXfcc(raw), xfcc: raw ?? null };
}

/** GET PEER_URL; resolves to {url, status, body} or {url, error}. Never rejects. */
function callPeer(url) {
  return new Promise((resolve) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => {
        let parsed = body;
        try { parsed = JSON.parse(body); } catch { /* not JSON: keep the text */ }
        resolve({ url, status: res.statusCode, body: parsed });
      });
      res.on('error', (err) => resolve({ url, error: `${err.code ?? 'ERROR'}: ${err.message}` }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 5 s'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve({ url, error: `${err.code ?? 'ERROR'}: ${err.message}` }));
  });
}

const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', 'http://app').pathname;
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  if (path === '/peer') {
    if (!peerUrl) return send(404, { ...whoAmI(req), error: `${workload} has no PEER_URL to call` });
    const upstream = await callPeer(peerUrl);
    return send(upstream.error === undefined ? 200 : 502, { ...whoAmI(req), upstream });
  }
  send(200, whoAmI(req));
});

// 127.0.0.1 only: see the header comment.
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening on 127.0.0.1:${address.port} as ${namespace}/${workload}${peerUrl ? `, peer ${peerUrl}` : ''}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
}
