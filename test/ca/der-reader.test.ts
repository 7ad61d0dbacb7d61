import t from 'tap';
import { oid, time } from '../../src/ca/der.js';
import { DerError, oidOf, readDer, timeOf } from '../../src/ca/der-reader.js';
import { OID } from '../../src/ca/oids.js';

/** A DER element with `tag` around latin1 `text`. */
const element = (tag: number, text: string) => readDer(Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'latin1')]), 'time');

t.test('times read back what der.ts writes, across the UTCTime / GeneralizedTime switch', async (t) => {
  for (const iso of ['1950-01-01T00:00:00Z', '1999-12-31T23:59:59Z', '2026-11-22T10:00:00Z', '2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z', '9999-12-31T23:59:59Z']) {
    const ms = Date.parse(iso);
    t.equal(timeOf(readDer(time(ms), 'time'), 'time'), ms, iso);
  }
  t.equal(timeOf(element(0x17, '491231235959Z'), 't'), Date.parse('2049-12-31T23:59:59Z'), 'UTCTime 49 is 2049');
  t.equal(timeOf(element(0x17, '500101000000Z'), 't'), Date.parse('1950-01-01T00:00:00Z'), 'UTCTime 50 is 1950');
});

t.test('times outside RFC 5280\'s restricted forms are refused, quoting the value', async (t) => {
  const bad: Array<[number, string, string]> = [
    [0x17, '2611221000Z', 'no seconds'],
    [0x17, '261122100000', 'no Z'],
    [0x17, '261122100000+0100', 'an offset'],
    [0x17, '26112210000aZ', 'a letter among the digits'],
    [0x18, '20261122100000.5Z', 'fractional seconds'],
    [0x18, '261122100000Z', 'a two-digit year in a GeneralizedTime'],
    [0x17, '20261122100000Z', 'a four-digit year in a UTCTime'],
    [0x04, '261122100000Z', 'not a time type'],
  ];
  for (const [tag, text, why] of bad) {
    t.throws(() => timeOf(element(tag, text), 'notAfter'), { name: DerError.name, message: `notAfter: "${text}" is not an RFC 5280 time` }, why);
  }
  t.throws(() => timeOf(undefined, 'notBefore'), { message: 'notBefore: missing' });
});

t.test('OIDs decode to dotted form, the same every time they are seen', async (t) => {
  const all = [OID.subjectAltName, OID.keyUsage, OID.ecPublicKey, OID.prime256v1, OID.serverAuth, '1.2.3.4.5.6.7.8.9.10000', '2.999.1'];
  for (let round = 0; round < 3; round++) {
    for (const dotted of all) t.equal(oidOf(readDer(oid(dotted), 'oid'), 'oid'), dotted, `${dotted} (round ${round + 1})`);
  }
  t.throws(() => oidOf(readDer(Buffer.from([0x06, 0x02, 0x2a, 0x86]), 'oid'), 'extnID'), { message: /extnID: malformed OBJECT IDENTIFIER/ }, 'a last octet with its high bit set');
  t.throws(() => oidOf(readDer(Buffer.from([0x04, 0x01, 0x2a]), 'oid'), 'extnID'), { message: /expected tag 0x6/ });
});
