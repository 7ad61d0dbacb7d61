import { GrpcChannel } from './h2-client.js';

export interface TargetParams {
  /** host:port of the gRPC server. */
  address: string;
  /** PEM roots when the server speaks TLS. */
  ca?: string;
  connections: number;
}

/** `connections` HTTP/2 connections to one server; stream i goes on connection i mod n. */
export class ChannelPool {
  readonly channels: GrpcChannel[] = [];

  constructor(target: TargetParams) {
    for (let i = 0; i < target.connections; i++) this.channels.push(new GrpcChannel(target.address, { ca: target.ca }));
  }

  async connected(): Promise<void> {
    await Promise.all(this.channels.map((c) => c.connected()));
  }

  forStream(i: number): GrpcChannel {
    return this.channels[i % this.channels.length]!;
  }

  close(): void {
    for (const c of this.channels) c.close();
  }
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one host. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

export function countBy<T extends string | number>(values: Iterable<T>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}
