import { join } from 'node:path';

/**
 * Where `meshd bootstrap --agent` expects the agent's SDS socket when only the agent's --out
 * directory is given: beside its xDS socket (`<out>/xds.sock`, src/agent/grpc-bootstrap.ts), so
 * one directory, shared by the agent and Envoy, holds both.
 */
export const AGENT_SDS_SOCKET_FILE = 'sds.sock';

export function defaultSdsSocket(certDir: string): string {
  return join(certDir, AGENT_SDS_SOCKET_FILE);
}
