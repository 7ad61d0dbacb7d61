import { Command, Option } from 'commander';
import { TokenAuthority } from '../auth/token-authority.js';
import { systemClock } from '../common/clock.js';
import { formatDuration, parseDuration } from '../common/duration.js';
import { TOKEN_TTL_MS } from '../common/defaults.js';
import { absolute, dataDirOption, storeKeyFileOption, storeOption } from './options.js';
import { withCliStore } from './store-access.js';
import { storeTokenAuthority } from '../store/token-key.js';
import { namespaceNameError, serviceAccountNameError } from '../auth/kubernetes-names.js';

/** `meshd token issue`: a bearer token a sidecar or agent presents as `authorization: Bearer …`. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('issue bearer tokens that prove a workload identity to meshd');
  token
    .command('issue')
    .description('print a signed token for a namespace and service account (like a Kubernetes service-account token with audience istio-ca)')
    .requiredOption('-n, --namespace <ns>', 'namespace of the workload')
    .requiredOption('-s, --service-account <sa>', 'service account of the workload')
    .addOption(new Option('--ttl <duration>', 'token lifetime').default(formatDuration(TOKEN_TTL_MS)))
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(storeKeyFileOption())
    .action(async (opts: { namespace: string; serviceAccount: string; ttl: string; dataDir: string; store?: string; storeKeyFile?: string }) => {
      const namespaceError = namespaceNameError(opts.namespace);
      if (namespaceError) throw new Error(`--namespace: ${namespaceError}`);
      const serviceAccountError = serviceAccountNameError(opts.serviceAccount);
      if (serviceAccountError) throw new Error(`--service-account: ${serviceAccountError}`);
      const authority = opts.store
        ? await withCliStore({ store: opts.store, storeKeyFile: opts.storeKeyFile }, (store) => storeTokenAuthority(store.tokens, systemClock))
        : await TokenAuthority.open(absolute(opts.dataDir), systemClock);
      const issued = await authority.issue({ namespace: opts.namespace, serviceAccount: opts.serviceAccount }, parseDuration(opts.ttl));
      process.stdout.write(issued.token + '\n');
      process.stderr.write(`token for system:serviceaccount:${opts.namespace}:${opts.serviceAccount}, expires ${issued.expiresAt.toISOString()}\n`);
    });
}
