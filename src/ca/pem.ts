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

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

interface RawBlock {
  begin: string;
  body: string;
  end: string;
  /** Offsets of the block's first and past its last character. */
  start: number;
  stop: number;
}

const isLabelChar = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20;

/** A label ([A-Z0-9 ]+) at `i` followed by "-----". */
function labelAt(text: string, i: number): { label: string; next: number } | undefined {
  let j = i;
  while (j < text.length && isLabelChar(text.charCodeAt(j))) j++;
  if (j === i || !text.startsWith('-----', j)) return undefined;
  return { label: text.slice(i, j), next: j + 5 };
}

/**
 * The PEM blocks of `text` in one forward pass: a BEGIN line, then everything up to the first
 * END line after it. (A regular expression with a lazy body rescans to the end of the text
 * from every BEGIN line without an END: quadratic, minutes for a 1 MB CSR of BEGIN lines.)
 * With no END line after a BEGIN line, there is none after any later one either.
 */
function* rawBlocks(text: string): Generator<RawBlock> {
  let pos = 0;
  for (;;) {
    const b = text.indexOf('-----BEGIN ', pos);
    if (b < 0) return;
    const begin = labelAt(text, b + 11);
    if (begin === undefined) {
      pos = b + 1;
      continue;
    }
    let from = begin.next;
    let e: number;
    let end: { label: string; next: number } | undefined;
    do {
      e = text.indexOf('-----END ', from);
      if (e < 0) return;
      end = labelAt(text, e + 9);
      from = e + 1;
    } while (end === undefined);
    yield { begin: begin.label, body: text.slice(begin.next, e), end: end.label, start: b, stop: end.next };
    pos = end.next;
  }
}

/**
 * Every PEM block in `text` (explanatory text around blocks is allowed, RFC 7468 §2).
 * `what` names the input in errors, e.g. "ca-cert.pem".
 */
export function decodePem(text: string, what: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let index = 0;
  for (const { begin, body, end } of rawBlocks(text)) {
    index++;
    if (begin !== end) throw new PemError(`${what}: PEM block ${index} begins "${begin}" but ends "${end}"`);
    if (body.includes(':')) throw new PemError(`${what}: PEM block ${index} (${begin}) has headers; encrypted or legacy PEM is not supported`);
    const b64 = body.replace(/\s+/g, '');
    if (!BASE64.test(b64) || b64.length % 4 !== 0) throw new PemError(`${what}: PEM block ${index} (${begin}) is not valid base64`);
    const der = Buffer.from(b64, 'base64');
    if (der.length === 0) throw new PemError(`${what}: PEM block ${index} (${begin}) is empty`);
    blocks.push({ label: begin, der });
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

/** Each CERTIFICATE block of a PEM bundle, as text ending in a newline; anything else is dropped. */
export function splitPemCertificates(pem: string): string[] {
  const out: string[] = [];
  for (const b of rawBlocks(pem)) if (b.begin === 'CERTIFICATE' && b.end === 'CERTIFICATE') out.push(`${pem.slice(b.start, b.stop)}\n`);
  return out;
}

export function certificatesToPem(ders: Uint8Array[]): string {
  return ders.map((d) => toPem('CERTIFICATE', d)).join('');
}
