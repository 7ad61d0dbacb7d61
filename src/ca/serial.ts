import { randomFillSync } from 'node:crypto';
import { unsignedIntegerContent } from './der.js';

/** Where randomness comes from; injected so tests can pin it. */
export type RandomSource = (size: number) => Buffer;

/**
 * OpenSSL's CSPRNG, drawn 4 KiB at a time: one randomBytes(16) call per certificate costs
 * more than the bytes (it allocates and crosses into C++ each time).
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

export const systemRandom: RandomSource = (size) => {
  if (size > pool.length) return randomFillSync(Buffer.alloc(size));
  if (poolOffset + size > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + size));
  pool.fill(0, poolOffset, poolOffset + size); // used bytes never linger
  poolOffset += size;
  return out;
};

/**
 * A 128-bit random serial number, uniform in [1, 2^128) as SPIRE draws it
 * (pkg/common/x509util/serialnumber.go), returned as DER INTEGER content: minimal,
 * with a 0x00 prefix when the top bit is set, so it is positive (RFC 5280 §4.1.2.2)
 * and never the padded or negative form forge's verbatim serialNumber produces.
 */
export function randomSerial(random: RandomSource = systemRandom): Buffer {
  for (;;) {
    const bytes = random(16);
    if (bytes.some((b) => b !== 0)) return unsignedIntegerContent(bytes);
  }
}

/** Lowercase hex without leading zeros, as IssuedCertificate.serialHex promises. */
export function serialHex(content: Uint8Array): string {
  const hex = Buffer.from(content).toString('hex').replace(/^0+/, '');
  return hex === '' ? '0' : hex;
}
