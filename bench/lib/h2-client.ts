import http2 from 'node:http2';
import { FrameReader, frameMessage } from './grpc-frames.js';

/**
 * A lean gRPC client over node:http2 for the load process: many streams per HTTP/2
 * connection, raw Buffers in and out, no interceptors, no serializers. grpc-js's own client
 * costs several times more CPU per message, and the load generator must not be the
 * bottleneck of what it measures.
 */
export interface ChannelOptions {
  /** PEM roots: connect over TLS and verify the server against them. */
  ca?: string;
  /** TLS server name to verify (meshd's SVID carries DNS SANs "meshd" and "localhost"). */
  servername?: string;
}

export interface CallHandlers {
  message(bytes: Buffer): void;
  /** The call ended: gRPC status code and message (-1 when the transport went away). */
  end(code: number, details: string): void;
}

export class GrpcChannel {
  readonly session: http2.ClientHttp2Session;
  private readonly ready: Promise<void>;

  constructor(address: string, options: ChannelOptions = {}) {
    const tls = options.ca !== undefined;
    this.session = http2.connect(`${tls ? 'https' : 'http'}://${address}`, {
      // Big windows so 100+ streams a connection never wait for WINDOW_UPDATEs.
      settings: { initialWindowSize: 4 << 20, enablePush: false },
      maxSessionMemory: 4096,
      peerMaxConcurrentStreams: 1_000_000,
      ...(tls ? { ca: options.ca, servername: options.servername ?? 'localhost' } : {}),
    });
    this.ready = new Promise((resolve, reject) => {
      this.session.once('connect', () => {
        this.session.setLocalWindowSize(1 << 30);
        resolve();
      });
      this.session.once('error', reject);
    });
    this.session.on('error', (err) => { this.failure ??= `session error: ${err.message}`; });
    this.session.on('goaway', (code: number) => { this.failure ??= `GOAWAY from the server (HTTP/2 code ${code})`; });
    this.session.on('close', () => { this.failure ??= 'connection closed'; });
  }

  /** Why the connection went away, if it did. */
  failure: string | undefined;

  connected(): Promise<void> {
    return this.ready;
  }

  /** Opens a bidi-streaming call. */
  call(path: string, metadata: Record<string, string>, handlers: CallHandlers): GrpcCall {
    const stream = this.session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...metadata,
    }, { endStream: false });
    return new GrpcCall(this, stream, handlers);
  }

  close(): void {
    this.session.close();
    this.session.destroy();
  }
}

export class GrpcCall {
  private ended = false;

  constructor(channel: GrpcChannel, private readonly stream: http2.ClientHttp2Stream, handlers: CallHandlers) {
    const reader = new FrameReader((m) => handlers.message(m));
    const finish = (code: number, details: string): void => {
      if (this.ended) return;
      this.ended = true;
      handlers.end(code, details);
    };
    const fromHeaders = (h: http2.IncomingHttpHeaders): void => {
      const s = h['grpc-status'];
      if (s !== undefined) finish(Number(s), decodeURIComponent(String(h['grpc-message'] ?? '')));
    };
    stream.on('response', fromHeaders);
    stream.on('trailers', fromHeaders);
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    stream.on('error', (err) => finish(-1, err.message));
    stream.on('close', () => finish(-1, `stream closed (HTTP/2 code ${stream.rstCode ?? 0}${channel.failure ? `; ${channel.failure}` : ''})`));
  }

  write(message: Uint8Array): void {
    if (!this.ended && !this.stream.destroyed) this.stream.write(frameMessage(message));
  }

  cancel(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  get isEnded(): boolean {
    return this.ended;
  }
}
