/**
 * Messages as `istioctl validate` prints them, with the file and line first:
 *   Error: examples/config/shop.yaml:12: PeerAuthentication/shop/default: port must be in range 1..65535
 */
import type { ConfigMessage } from './model.js';

export function formatMessage(m: ConfigMessage): string {
  const level = m.level === 'error' ? 'Error' : 'Warning';
  const resource = m.resource !== undefined ? `${m.resource}: ` : '';
  return `${level}: ${m.source.file}:${m.source.line}: ${resource}${m.message}`;
}

export function countLevels(messages: readonly ConfigMessage[]): { errors: number; warnings: number } {
  let errors = 0;
  for (const m of messages) if (m.level === 'error') errors++;
  return { errors, warnings: messages.length - errors };
}
