/** PEM in and out: blocks found in one forward pass, whatever the text around them. */
import t from 'tap';
import { certificatesToPem, decodePem, PemError, splitPemCertificates, toPem } from '../../src/ca/pem.js';

const A = Buffer.from('3003020101', 'hex');
const B = Buffer.from('300602010102010a', 'hex');

t.test('blocks between explanatory text, in order, with their labels', async (t) => {
  const text = `intro\n${toPem('CERTIFICATE', A)}between\n${toPem('CERTIFICATE REQUEST', B)}-----BEGIN lowercase-----\noutro`;
  t.same(decodePem(text, 'x').map((b) => [b.label, b.der.toString('hex')]), [['CERTIFICATE', A.toString('hex')], ['CERTIFICATE REQUEST', B.toString('hex')]]);
  t.throws(() => decodePem(toPem('CERTIFICATE', A).replace('END CERTIFICATE', 'END X509'), 'x'), { name: 'PemError', message: 'x: PEM block 1 begins "CERTIFICATE" but ends "X509"' });
  t.throws(() => decodePem(`-----BEGIN CERTIFICATE-----\nMIIB\n`, 'x'), new PemError('x: no PEM block found (a BEGIN line without a matching END line?)'));
});

t.test('splitPemCertificates: each CERTIFICATE block with a newline, other blocks left out', async (t) => {
  const bundle = certificatesToPem([A, B]);
  t.same(splitPemCertificates(bundle), [toPem('CERTIFICATE', A), toPem('CERTIFICATE', B)]);
  t.same(splitPemCertificates(`x${toPem('PRIVATE KEY', A)}${toPem('CERTIFICATE', B).trimEnd()}`), [toPem('CERTIFICATE', B)]);
  t.same(splitPemCertificates('-----BEGIN CERTIFICATE-----\nabc'), []);
});

t.test('a megabyte of BEGIN lines without an END is refused in one pass (fuzz finding: minutes of regex rescans)', async (t) => {
  t.setTimeout(60_000);
  const text = '-----BEGIN CERTIFICATE-----\n-----BEGIN A-----\n'.repeat(25_000);
  t.throws(() => decodePem(text, 'CSR'), new PemError('CSR: no PEM block found (a BEGIN line without a matching END line?)'));
  t.same(splitPemCertificates(text), []);
  const ends = `${text}-----END CERTIFICATE-----\n`.repeat(2);
  t.equal(splitPemCertificates(ends).length, 2, 'and with END lines far apart');
});
