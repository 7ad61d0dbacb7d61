/**
 * TLS for bundle endpoints, server and client: SPIFFE Federation §5 asks for Mozilla's
 * "intermediate" compatibility (https://wiki.mozilla.org/Security/Server_Side_TLS): TLS 1.2 and
 * 1.3; for TLS 1.2 only ECDHE/DHE key exchange with AEAD ciphers. TLS 1.3 suites are OpenSSL's
 * defaults, which are exactly Mozilla's list.
 */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-CHACHA20-POLY1305',
].join(':');
