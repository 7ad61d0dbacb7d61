import type { Server } from '@grpc/grpc-js';
import type { Http2Session } from 'node:http2';

/**
 * Stops a grpc-js server: it stops accepting at once, open connections get `graceMs` (real time,
 * not a test's clock: it bounds how long peers get over real sockets) to close after GOAWAY, and
 * then every connection still open is cut.
 *
 * grpc-js's forceShutdown() destroys only the sessions it records for channelz, so with channelz
 * off ('grpc.enable_channelz': 0, as meshd and its agent run) it destroys none: a peer that keeps
 * its connection after GOAWAY keeps it, and the stopped process cannot exit. The sessions are
 * therefore collected from the server's HTTP/2 listeners (grpc-js's `http2Servers`, each with the
 * set of its sessions; see grpc-node packages/grpc-js/src/server.ts) and destroyed here.
 */
export function shutdownGrpcServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      const open = openSessions(server);
      server.forceShutdown();
      for (const session of open) if (!session.destroyed) session.destroy();
      resolve();
    }, graceMs);
    server.tryShutdown(() => { clearTimeout(timer); resolve(); });
  });
}

interface Http2ServerEntry { sessions?: Set<Http2Session> }

function openSessions(server: Server): Http2Session[] {
  const listeners = (server as unknown as { http2Servers?: Map<unknown, Http2ServerEntry> }).http2Servers;
  if (!(listeners instanceof Map)) return [];
  return [...listeners.values()].flatMap((entry) => (entry.sessions instanceof Set ? [...entry.sessions] : []));
}
