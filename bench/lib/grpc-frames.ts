/**
 * gRPC length-prefixed messages (PROTOCOL-HTTP2.md: 1 byte compressed flag, 4 bytes
 * big-endian length, the message), for the lean load client.
 */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Reassembles messages from HTTP/2 DATA chunks, copying only when a message spans chunks. */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly onMessage: (message: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < 5) return;
      const need = 5 + this.peekLength();
      if (this.pendingBytes < need) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let offset = 0;
    while (buf.length - offset >= 5) {
      const length = buf.readUInt32BE(offset + 1);
      if (buf.length - offset - 5 < length) break;
      this.onMessage(buf.subarray(offset + 5, offset + 5 + length));
      offset += 5 + length;
    }
    if (offset < buf.length) {
      const rest = buf.subarray(offset);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
  }

  private peekLength(): number {
    const head = Buffer.concat(this.pending, this.pendingBytes).subarray(0, 5);
    return head.readUInt32BE(1);
  }
}
