import { Counter, type Registry } from 'prom-client';
import type { AuthenticationFailure } from './identity.js';

const REASONS: readonly AuthenticationFailure[] = [
  'missing', 'invalid', 'expired', 'untrusted', 'revoked', 'reused', 'control_plane_identity', 'workload_mismatch', 'workload_unknown',
];

/**
 * meshd_authentication_failures_total{reason, namespace, service_account}: refused credentials by
 * why. namespace and service_account are set only when the credential is genuine (signed by this
 * mesh's CA or token key) and so cannot be chosen freely by a caller; otherwise they are empty.
 * Each reason starts at 0 so an alert can use increase() from the first refusal.
 */
export function authenticationFailures(registry: Registry): Counter<'reason' | 'namespace' | 'service_account'> {
  const counter = new Counter({
    name: 'meshd_authentication_failures_total',
    help: 'Credentials refused by meshd, by reason: missing, invalid, expired, untrusted (foreign CA or key), revoked, reused (single-use token), control_plane_identity, workload_mismatch, workload_unknown. namespace/service_account name the identity when the credential is genuine.',
    labelNames: ['reason', 'namespace', 'service_account'],
    registers: [registry],
  });
  for (const reason of REASONS) counter.inc({ reason, namespace: '', service_account: '' }, 0);
  return counter;
}
