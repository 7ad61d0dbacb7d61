/** PEM (RFC 7468) in and out, with errors that say what was wrong and where. */

import { asBuffer } from '../common/bytes.js';

export interface PemBlock {
  label: string;
  der: Buffer;
}

export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PemError';
  }
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = asBuffer(der).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Every PEM block in `text` (explanatory text around blocks is allowed, RFC 7468 §2).
 * `what` names the input in errors, e.g. "ca-cert.pem".
 */
export function decodePem(text: string, what: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let index = 0;
  for (const m of text.matchAll(BLOCK)) {
    index++;
    const [, begin, body, end] = m;
    if (begin !== end) throw new PemError(`${what}: PEM block ${index} begins "${begin}" but ends "${end}"`);
    if (body!.includes(':')) throw new PemError(`${what}: PEM block ${index} (${begin}) has headers; encrypted or legacy PEM is not supported`);
    const b64 = body!.replace(/\s+/g, '');
    if (!BASE64.test(b64) || b64.length % 4 !== 0) throw new PemError(`${what}: PEM block ${index} (${begin}) is not valid base64`);
    const der = Buffer.from(b64, 'base64');
    if (der.length === 0) throw new PemError(`${what}: PEM block ${index} (${begin}) is empty`);
    blocks.push({ label: begin!, der });
  }
  if (blocks.length === 0) {
    const hint = text.includes('-----BEGIN') ? ' (a BEGIN line without a matching END line?)' : '';
    throw new PemError(`${what}: no PEM block found${hint}`);
  }
  return blocks;
}

/** Exactly the blocks labelled `label`; any other label is an error naming it. */
export function decodePemOf(text: string, label: string | string[], what: string): Buffer[] {
  const labels = Array.isArray(label) ? label : [label];
  return decodePem(text, what).map((b, i) => {
    if (!labels.includes(b.label)) throw new PemError(`${what}: PEM block ${i + 1} is "${b.label}", expected ${labels.map((l) => `"${l}"`).join(' or ')}`);
    return b.der;
  });
}

export function certificatesToPem(ders: Uint8Array[]): string {
  return ders.map((d) => toPem('CERTIFICATE', d)).join('');
}
