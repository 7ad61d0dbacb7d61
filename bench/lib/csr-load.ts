/**
 * The agents of bench:sds's rotation storm (scenario C), in one load process: each agent holds
 * a client SVID of its identity and a fresh key pair with its CSR, made beforehand (on a real
 * host the agent makes its key itself, on its own CPU, which is not meshd's cost). On `storm`
 * every agent at once opens its own TLS connection to meshd's gRPC port presenting its SVID (no
 * token) and calls the CSR API's CreateCertificate, as `meshd agent` renews, trying again after
 * a backoff when an attempt fails; the process reports when each renewal came back and what
 * failed on the way.
 *
 * node:http2 directly, like h2-client.ts: grpc-js's client costs several times more CPU per call,
 * and the load generator shares the machine with the server it measures.
 */
import http2 from 'node:http2';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { CREATE_CERTIFICATE_PATH, decodeCertificateResponse, encodeCertificateRequest } from '../../src/csr/definition.js';
import { FrameReader, frameMessage } from './grpc-frames.js';
import { serveIpc } from './ipc.js';

export interface AgentSvid { spiffeId: string; keyPem: string; chainPem: string }

export interface CsrStormResult {
  agents: number;
  renewed: number;
  /** From the first connection opened to the last certificate received. */
  elapsedMs: number;
  /** Per agent, ms from the storm's start to its certificate. */
  latenciesMs: number[];
  /** Failed attempts by reason (each agent tries again after a backoff until the deadline). */
  failures: Record<string, number>;
}

interface Agent { svid: AgentSvid; csrPem: string }
let agents: Agent[] = [];

/** One CreateCertificate call on a new TLS connection; rejects with why it failed. */
function attempt(agent: Agent, address: string, ca: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${address}`, {
      ca, key: agent.svid.keyPem, cert: agent.svid.chainPem, servername: 'localhost', settings: { enablePush: false },
    });
    const fail = (why: string): void => { session.destroy(); reject(new Error(why)); };
    const timer = setTimeout(() => fail('deadline exceeded'), timeoutMs);
    session.on('error', (err) => fail(`connection: ${err.message}`));
    const stream = session.request({ ':method': 'POST', ':path': CREATE_CERTIFICATE_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    let chain = 0;
    const reader = new FrameReader((m) => { chain = decodeCertificateResponse(m).certChain.length; });
    stream.on('data', (b: Buffer) => reader.push(b));
    const done = (h: http2.IncomingHttpHeaders): void => {
      const code = h['grpc-status'];
      if (code === undefined) return;
      clearTimeout(timer);
      session.close();
      if (String(code) !== '0') reject(new Error(`grpc-status ${code}: ${decodeURIComponent(String(h['grpc-message'] ?? '')).slice(0, 120)}`));
      else if (chain < 2) reject(new Error(`a chain of ${chain} certificates`));
      else resolve();
    };
    stream.on('response', done);
    stream.on('trailers', done);
    stream.on('error', (err) => { clearTimeout(timer); fail(`stream: ${err.message}`); });
    // Closed without a gRPC status (the connection reset or refused): a failed attempt, never a hang.
    stream.on('close', () => { clearTimeout(timer); fail(`stream closed without a status (HTTP/2 code ${stream.rstCode ?? 0})`); });
    stream.end(frameMessage(encodeCertificateRequest({ csr: agent.csrPem, validitySeconds: 86_400, metadata: {} })));
  });
}

/**
 * An agent's renewal: attempts until one succeeds or the deadline passes, waiting as `meshd agent`
 * does between them (1 s, doubling, at most 30 s here, each ±50 % so a refused fleet does not
 * come back in step). Each failed attempt is counted by its reason.
 */
async function renew(agent: Agent, address: string, ca: string, deadline: number, failures: Record<string, number>): Promise<boolean> {
  for (let n = 0; ; n++) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    try {
      await attempt(agent, address, ca, left);
      return true;
    } catch (err) {
      const why = (err as Error).message;
      failures[why] = (failures[why] ?? 0) + 1;
    }
    await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** n, 30_000) * (0.5 + Math.random())));
  }
}

serveIpc({
  /** One fresh EC P-256 key and CSR per agent; agent i holds SVID i mod svids.length. */
  async prepare(p: { agents: number; svids: AgentSvid[] }): Promise<number> {
    agents = [];
    for (let i = 0; i < p.agents; i++) {
      const svid = p.svids[i % p.svids.length]!;
      agents.push({ svid, csrPem: (await generateWorkloadKey('ec-p256', svid.spiffeId)).csrPem });
    }
    return agents.length;
  },
  /** A sample of the CSRs with their identities, for the CA's minting ceiling. */
  csrs(p: { count: number; first?: number }): Array<{ spiffeId: string; csrPem: string }> {
    return agents.slice(p.first ?? 0, (p.first ?? 0) + p.count).map((a) => ({ spiffeId: a.svid.spiffeId, csrPem: a.csrPem }));
  },
  /** Agents [first, first + count) renew at once (default: all). */
  async storm(p: { address: string; ca: string; timeoutMs: number; first?: number; count?: number }): Promise<CsrStormResult> {
    const first = p.first ?? 0;
    const these = agents.slice(first, p.count === undefined ? undefined : first + p.count);
    const started = performance.now();
    const latenciesMs: number[] = [];
    const failures: Record<string, number> = {};
    await Promise.all(these.map(async (a) => {
      if (await renew(a, p.address, p.ca, started + p.timeoutMs, failures)) latenciesMs.push(performance.now() - started);
    }));
    return { agents: these.length, renewed: latenciesMs.length, elapsedMs: Math.max(0, ...latenciesMs), latenciesMs, failures };
  },
});
