import * as fc from 'fast-check';
import { certificatesToPem, decodePem, PemError, splitPemCertificates, toPem } from '../../src/ca/pem.js';
import { ContractViolation, expectedError, text, utf8, type FuzzTarget } from '../target.js';

const CERTS = [Buffer.from('3003020101', 'hex'), Buffer.from('300602010102010a', 'hex')];

/** Pieces of PEM text, repeated: splitters that rescan from every BEGIN are quadratic in them. */
const PIECES = ['-----BEGIN CERTIFICATE-----\n', '-----END CERTIFICATE-----\n', '-----BEGIN A-----', '-----END B-----', 'MIIB', '====\n', ':', '\n', '-----', 'BEGIN ', ' '];

/** The PEM splitters (src/ca/pem.ts): CSRs arrive as PEM from any CSR API client. */
export const pem: FuzzTarget = {
  name: 'pem',
  about: 'decodePem: blocks or PemError; splitPemCertificates: never throws, each piece one block; decode(encode(x)) = x; linear time',
  seeds: () => [utf8(certificatesToPem(CERTS)), utf8(`junk before\n${toPem('CERTIFICATE REQUEST', CERTS[0]!)}after`), utf8(toPem('PRIVATE KEY', CERTS[1]!).replace('PRIVATE KEY-----\n', 'PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n'))],
  generators: [
    fc.tuple(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 20_000 }))
      .map(([pieces, times]) => utf8(pieces.join('').repeat(times))),
  ],
  check(input) {
    const s = text(input);
    for (const piece of splitPemCertificates(s)) {
      if (!piece.startsWith('-----BEGIN CERTIFICATE-----') || !piece.endsWith('-----END CERTIFICATE-----\n')) throw new ContractViolation(`a split piece is not one block: ${JSON.stringify(piece.slice(0, 80))}`);
    }
    try {
      return `${decodePem(s, 'fuzz').length > 0 ? 'blocks' : 'none'}`;
    } catch (err) {
      return expectedError(err, PemError);
    }
  },
  property: {
    arbitrary: fc.record({ label: fc.stringMatching(/^[A-Z0-9]([A-Z0-9 ]{0,20}[A-Z0-9])?$/), ders: fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 4 }) }),
    check(value) {
      const v = value as { label: string; ders: Uint8Array[] };
      const text = v.ders.map((d) => toPem(v.label, d)).join('');
      const blocks = decodePem(text, 'fuzz');
      const ok = blocks.length === v.ders.length && blocks.every((b, i) => b.label === v.label && b.der.equals(v.ders[i]!));
      if (!ok) throw new ContractViolation(`round trip of ${v.ders.length} ${v.label} blocks gave ${blocks.length}`);
      const certs = certificatesToPem(v.ders);
      if (splitPemCertificates(certs).join('') !== certs) throw new ContractViolation('splitPemCertificates(certificatesToPem(x)) does not give the blocks back');
    },
  },
};
