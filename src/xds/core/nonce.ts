/**
 * Nonces for one stream.
 *
 * xds_protocol "Nonces": a nonce is valid only within its stream and does
 * not survive reconnects. A client that reconnects (perhaps to another meshd replica) may
 * echo a nonce from its previous stream; that nonce must count as "no nonce yet", not as a
 * stale one. So every nonce carries its stream's tag (random per core instance, plus the
 * stream's sequence number) and a counter, and `issued()` recognises exactly the nonces
 * this stream produced.
 *
 * xds_protocol: every response gets a fresh nonce; on ADS one counter is shared by all types.
 */
export class NonceIssuer {
  private counter = 0;

  constructor(private readonly tag: string) {}

  next(): string {
    this.counter += 1;
    return `${this.tag}-${this.counter.toString(36)}`;
  }

  /** True when this stream handed out `nonce` (whether or not it is still the latest). */
  issued(nonce: string): boolean {
    if (!nonce.startsWith(this.tag) || nonce.charCodeAt(this.tag.length) !== 45 /* '-' */) return false;
    const rest = nonce.slice(this.tag.length + 1);
    if (!/^[0-9a-z]+$/.test(rest)) return false;
    const n = parseInt(rest, 36);
    return n >= 1 && n <= this.counter;
  }
}
