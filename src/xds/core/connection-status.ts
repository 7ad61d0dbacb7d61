/**
 * The debug view of connected proxies (/debug/connections, `meshd proxy-status`), shaped
 * like istioctl proxy-status: per stream and type, the version sent, the version ACKed and
 * SYNCED / STALE / NOT SENT, plus the last NACK.
 */
export type SyncStatus = 'SYNCED' | 'STALE' | 'NOT SENT';

export interface NackStatus {
  message: string;
  /** google.rpc.Code the client put in error_detail (grpc-js-xds always sends 14). */
  code: number;
  /** The version that was rejected. */
  version: string;
  at: string;
  /** Resources in the rejected response. */
  resources: string[];
}

export interface TypeStatus {
  typeUrl: string;
  /** cds, eds, lds, rds, sds, ... */
  type: string;
  /** SYNCED: the latest response was ACKed; STALE: sent but not ACKed (or NACKed); NOT SENT: subscribed, nothing sent yet. */
  status: SyncStatus;
  versionSent?: string;
  nonceSent?: string;
  versionAcked?: string;
  lastAckAt?: string;
  subscribed: { wildcard: boolean; names: number };
  /** Resources the proxy holds as far as meshd knows. */
  resources: number;
  lastNack?: NackStatus;
}

export interface ConnectionStatus {
  connectionId: string;
  proxyId: string;
  spiffeId: string;
  peer: string;
  /** ads, sds, lds, cds, rds, eds */
  service: string;
  mode: 'sotw' | 'delta';
  userAgent: string;
  connectedAt: string;
  /** Milliseconds between the most recent ACKed response and its ACK. */
  lastAckLatencyMs?: number;
  types: TypeStatus[];
}
