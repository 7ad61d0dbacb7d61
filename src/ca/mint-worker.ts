import { parentPort } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { generateP256 } from './keys.js';
import { mintLeaves } from './leaf-mint.js';
import { signTemplates } from './signer.js';
import type { KeyType } from './keys.js';
import type { IssuerInfo } from './templates.js';
import type { MintRequest, MintReply, MintWorkerMessage } from './mint-pool.js';
import { asBuffer } from '../common/bytes.js';

/**
 * A mint worker thread (see mint-pool.ts): for each batch, P-256 key pairs, then
 * mintLeaves() with the signing key it was sent. Everything it needs comes in messages;
 * nothing here reads the clock, the data dir or the network.
 */

const port = parentPort;
if (!port) throw new Error('mint-worker runs as a worker thread of mint-pool.ts');

interface Signing { key: KeyObject; keyType: KeyType; issuer: IssuerInfo; trustDomain: string }

/** Signing contexts by id; a root rotation adds one while batches for the previous may be queued. */
const contexts = new Map<number, Signing>();
const KEEP_CONTEXTS = 4;

port.on('message', (msg: MintWorkerMessage) => {
  if (msg.kind === 'context') {
    const { issuer } = msg;
    // Structured clone delivers Buffers as plain Uint8Arrays; the DER writer wants Buffers.
    contexts.set(msg.id, {
      key: msg.key, keyType: msg.keyType, trustDomain: msg.trustDomain,
      issuer: { ...issuer, subject: asBuffer(issuer.subject), subjectKeyId: asBuffer(issuer.subjectKeyId) },
    });
    for (const id of contexts.keys()) if (contexts.size > KEEP_CONTEXTS) contexts.delete(id);
    return;
  }
  void mint(msg).then((reply) => port.postMessage(reply));
});

async function mint(req: MintRequest): Promise<MintReply> {
  const signing = contexts.get(req.context);
  if (!signing) return { seq: req.seq, error: `mint worker has no signing context #${req.context}` };
  try {
    const keys = req.jobs.map(() => generateP256());
    const outcomes = await mintLeaves(
      req.jobs.map((job, i) => ({ ...job, serial: asBuffer(job.serial), spki: keys[i]!.spki })),
      { trustDomain: signing.trustDomain, issuer: signing.issuer, now: req.now, keyType: 'ec-p256' },
      (templates) => signTemplates(templates, signing.key, signing.keyType),
    );
    return { seq: req.seq, results: outcomes.map((outcome, i) => ({ outcome, keyPem: keys[i]!.privateKeyPem })) };
  } catch (e) {
    return { seq: req.seq, error: e instanceof Error ? e.message : String(e) };
  }
}
