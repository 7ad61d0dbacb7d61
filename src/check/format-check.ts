import type { CheckResult } from './simulate-connection.js';

/** Human-readable `meshd check` output: the verdict first, then how the config got there. */
export function formatCheckResult(from: string, to: string, r: CheckResult): string {
  const lines = [
    `${from} → ${to}`,
    `  ${r.summary}`,
    `  policy: ${r.serverMode !== undefined ? `${r.serverMode}, ` : ''}decided by ${r.decidedBy}`,
  ];
  if (r.chain !== undefined) lines.push(`  filter chain: ${r.chain}`);
  if (r.authorization !== undefined) lines.push(`  authorization: ${r.authorization.allowed ? 'ALLOWED' : 'DENIED'}: ${r.authorization.summary}`);
  if (r.verifiedBy !== undefined) {
    for (const [side, u] of [['client', r.verifiedBy.client], ['server', r.verifiedBy.server]] as const) {
      lines.push(`  ${side} certificate verified by: ${u.trustDomain}'s bundle (secret ${u.secret}, ${u.validator})`);
    }
  }
  lines.push('', 'How:');
  for (const s of r.steps) lines.push(`  - ${s}`);
  if (r.warnings.length > 0) {
    lines.push('', 'Config warnings for these proxies:');
    for (const w of r.warnings) lines.push(`  - ${w}`);
  }
  return `${lines.join('\n')}\n`;
}
