import { Command, Option } from 'commander';
import { TokenAuthority } from '../auth/token-authority.js';
import { DataDirTokenLedger } from '../auth/token-ledger.js';
import { workloadEntryAccount } from '../auth/workload-binding.js';
import { systemClock } from '../common/clock.js';
import { formatDuration, parseDuration } from '../common/duration.js';
import { TOKEN_LONG_LIVED_MS, TOKEN_TTL_MS } from '../common/defaults.js';
import { loadConfigDir } from '../config/load-config-dir.js';
import { absolute, dataDirOption, storeKeyFileOption, storeOption } from './options.js';
import { withCliStore } from './store-access.js';
import { storeTokenAuthority } from '../store/token-key.js';
import { StoreTokenLedger } from '../store/token-ledger.js';
import { silentLogger } from '../common/logger.js';
import { namespaceNameError, serviceAccountNameError } from '../auth/kubernetes-names.js';

interface IssueOptions {
  namespace?: string; serviceAccount?: string; workload?: string; configDir?: string; singleUse?: boolean; ttl: string; dataDir: string;
  store?: string; storeKeyFile?: string;
}

/**
 * `meshd token issue` / `meshd token revoke`: join tokens a sidecar or agent presents as
 * `authorization: Bearer …` for its first certificate; afterwards it renews with its SVID.
 */
export function registerToken(program: Command): void {
  const token = program.command('token').description('issue and revoke join tokens that prove a workload identity to meshd');
  token
    .command('issue')
    .description('print a signed token for a namespace and service account (like a Kubernetes service-account token with audience istio-ca); its id goes to stderr')
    .option('-n, --namespace <ns>', 'namespace of the workload (with --workload: taken from it)')
    .option('-s, --service-account <sa>', 'service account of the workload (with --workload and --config-dir: taken from the WorkloadEntry)')
    .option('--workload <ns/name>', 'bind the token to this WorkloadEntry: meshd refuses it unless the entry exists and runs as the token\'s service account')
    .option('--config-dir <dir>', 'mesh config dir holding the --workload entry, to take its service account from')
    .option('--single-use', 'meshd accepts the token once and refuses it afterwards, across restarts (for `meshd agent`, which then renews with its SVID)')
    .addOption(new Option('--ttl <duration>', `token lifetime (over ${formatDuration(TOKEN_LONG_LIVED_MS)} is allowed, with a warning)`).default(formatDuration(TOKEN_TTL_MS)))
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .action(async (opts: IssueOptions) => {
      const { namespace, serviceAccount, workloadEntry } = await subjectOf(opts);
      const ttlMs = parseDuration(opts.ttl);
      const authority = opts.store
        ? await withCliStore({ store: opts.store, storeKeyFile: opts.storeKeyFile }, (store) => storeTokenAuthority(store.tokens, systemClock))
        : await TokenAuthority.open(absolute(opts.dataDir), systemClock);
      const issued = await authority.issue({ namespace, serviceAccount }, ttlMs, { singleUse: opts.singleUse === true, ...(workloadEntry ? { workloadEntry } : {}) });
      if (ttlMs > TOKEN_LONG_LIVED_MS) {
        process.stderr.write(`meshd token: warning: a ${formatDuration(ttlMs)} token proves this identity to anyone holding it until ${issued.expiresAt.toISOString()}; `
          + 'prefer a short join token (workloads renew with their certificate) or revoke it with `meshd token revoke` when done\n');
      }
      process.stdout.write(issued.token + '\n');
      const traits = [opts.singleUse ? 'single-use' : '', workloadEntry ? `bound to WorkloadEntry ${namespace}/${workloadEntry}` : ''].filter(Boolean);
      process.stderr.write(`token id ${issued.id} for system:serviceaccount:${namespace}:${serviceAccount}, expires ${issued.expiresAt.toISOString()}`
        + `${traits.length > 0 ? `, ${traits.join(', ')}` : ''}\n`);
    });
  token
    .command('revoke')
    .description('refuse a token from now on, before it expires, on every meshd sharing this data dir or store (running or not)')
    .argument('<id>', 'the token id printed by `meshd token issue`')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .action(async (id: string, opts: { dataDir: string; store?: string; storeKeyFile?: string }) => {
      if (opts.store) {
        await withCliStore({ store: opts.store, storeKeyFile: opts.storeKeyFile },
          (store) => new StoreTokenLedger({ tokens: store.tokens, clock: systemClock, logger: silentLogger() }).revoke(id));
      } else {
        await (await DataDirTokenLedger.open(absolute(opts.dataDir), systemClock)).revoke(id);
      }
      process.stderr.write(`revoked token ${id}; meshd refuses it at its next use (streams it already opened keep running)\n`);
    });
}

async function subjectOf(opts: IssueOptions): Promise<{ namespace: string; serviceAccount: string; workloadEntry?: string }> {
  let namespace = opts.namespace;
  let serviceAccount = opts.serviceAccount;
  let workloadEntry: string | undefined;
  if (opts.workload !== undefined) {
    const parts = opts.workload.split('/');
    if (parts.length !== 2) throw new Error(`--workload ${opts.workload}: expected <namespace>/<WorkloadEntry name>`);
    const [ns, name] = parts as [string, string];
    if (namespace !== undefined && namespace !== ns) throw new Error(`--namespace ${namespace} disagrees with --workload ${opts.workload}`);
    namespace = ns;
    workloadEntry = name;
    if (opts.configDir !== undefined) {
      const entry = workloadEntryAccount(await loadConfigDir(absolute(opts.configDir)), ns, name);
      if (!entry) throw new Error(`--workload: no WorkloadEntry ${opts.workload} in ${opts.configDir}`);
      if (serviceAccount !== undefined && serviceAccount !== entry.serviceAccount) {
        throw new Error(`--service-account ${serviceAccount} disagrees with WorkloadEntry ${opts.workload}, which runs as ${entry.serviceAccount}`);
      }
      serviceAccount = entry.serviceAccount;
    }
  } else if (opts.configDir !== undefined) {
    throw new Error('--config-dir is used only with --workload');
  }
  if (namespace === undefined) throw new Error('give --namespace, or --workload <namespace>/<name>');
  if (serviceAccount === undefined) throw new Error('give --service-account, or --workload with --config-dir to take it from the WorkloadEntry');
  const namespaceError = namespaceNameError(namespace);
  if (namespaceError) throw new Error(`--namespace: ${namespaceError}`);
  const serviceAccountError = serviceAccountNameError(serviceAccount);
  if (serviceAccountError) throw new Error(`--service-account: ${serviceAccountError}`);
  return { namespace, serviceAccount, ...(workloadEntry !== undefined ? { workloadEntry } : {}) };
}
