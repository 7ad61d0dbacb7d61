import { Option, type Command } from 'commander';
import { formatMessage } from '../config/format.js';
import { loadConfigDir } from '../config/load-config-dir.js';
import { CheckArgumentError, parseFrom, parseTo } from '../check/check-args.js';
import { formatCheckResult } from '../check/format-check.js';
import { simulateConnection } from '../check/simulate-connection.js';

/**
 * `meshd check --config-dir DIR --from <ns/workload|outside> --to <ns/workload>:<port>`:
 * walks the Envoy config meshd would serve and says what a connection gets (mTLS and with
 * which identities, plaintext, passthrough, or a reset with NR) and which policy decided it.
 * Exit status 0 whatever the verdict; 1 for bad arguments or a config dir that cannot be read.
 */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('show what a connection between two workloads gets under the current config: mTLS, plaintext or reset (NR), and which policy decided it')
    .requiredOption('--config-dir <dir>', 'mesh config dir (Istio YAML)')
    .requiredOption('--from <client>', "'outside' or <namespace>/<workload> (WorkloadEntry name)")
    .requiredOption('--to <target>', '<namespace>/<workload>:<port> (the workload port)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { configDir: string; from: string; to: string; output: 'text' | 'json' }) => {
      const snapshot = await loadConfigDir(opts.configDir);
      for (const m of snapshot.messages.filter((x) => x.level === 'error')) process.stderr.write(`${formatMessage(m)}\n`);
      try {
        const client = parseFrom(snapshot, opts.from);
        const target = parseTo(snapshot, opts.to);
        const result = simulateConnection(snapshot, client, target.workload, target.port);
        process.stdout.write(opts.output === 'json' ? `${JSON.stringify({ from: opts.from, to: opts.to, ...result }, null, 2)}\n` : formatCheckResult(opts.from, opts.to, result));
      } catch (err) {
        if (!(err instanceof CheckArgumentError)) throw err;
        process.stderr.write(`meshd check: ${err.message}\n`);
        process.exitCode = 1;
      }
    });
}
