import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatMessage } from '../config/format.js';
import { loadConfigDir } from '../config/load-config-dir.js';
import { CheckArgumentError, parseFrom, parseTo } from '../check/check-args.js';
import { formatCheckResult } from '../check/format-check.js';
import { simulateConnection } from '../check/simulate-connection.js';

/**
 * `meshd check --config-dir DIR --from <ns/workload|outside> --to <ns/workload>:<port>
 * [--method M --path P --header k=v]`: walks the Envoy config meshd would serve and says what a
 * connection gets (mTLS and with which identities, plaintext, passthrough, or a reset with NR),
 * which policy decided it, and whether the server's AuthorizationPolicies allow the request.
 * Exit status 0 whatever the verdict; 1 for bad arguments or a config dir that cannot be read.
 */
function collectHeader(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected <name>=<value>, got "${value}"`);
  return { ...previous, [value.slice(0, eq).toLowerCase()]: value.slice(eq + 1) };
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('show what a connection between two workloads gets under the current config: mTLS, plaintext or reset (NR), which policy decided it, and whether AuthorizationPolicies allow the request')
    .requiredOption('--config-dir <dir>', 'mesh config dir (Istio YAML)')
    .requiredOption('--from <client>', "'outside' or <namespace>/<workload> (WorkloadEntry name)")
    .requiredOption('--to <target>', '<namespace>/<workload>:<port> (the workload port)')
    .option('--method <method>', 'HTTP method of the request checked against AuthorizationPolicies', 'GET')
    .option('--path <path>', 'HTTP path of the request checked against AuthorizationPolicies', '/')
    .option('--header <name=value>', 'a request header (repeatable); host=... sets the :authority', collectHeader, {})
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { configDir: string; from: string; to: string; output: 'text' | 'json'; method: string; path: string; header: Record<string, string> }) => {
      const snapshot = await loadConfigDir(opts.configDir);
      for (const m of snapshot.messages.filter((x) => x.level === 'error')) process.stderr.write(`${formatMessage(m)}\n`);
      try {
        const client = parseFrom(snapshot, opts.from);
        const target = parseTo(snapshot, opts.to);
        const result = simulateConnection(snapshot, client, target.workload, target.port, { method: opts.method, path: opts.path, headers: opts.header });
        process.stdout.write(opts.output === 'json' ? `${JSON.stringify({ from: opts.from, to: opts.to, ...result }, null, 2)}\n` : formatCheckResult(opts.from, opts.to, result));
      } catch (err) {
        if (!(err instanceof CheckArgumentError)) throw err;
        process.stderr.write(`meshd check: ${err.message}\n`);
        process.exitCode = 1;
      }
    });
}
