import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { buildSnapshot, type ConfigFile } from '../config/build-snapshot.js';
import { countLevels, formatMessage } from '../config/format.js';
import { readConfigFile, readConfigFiles } from '../config/load-config-dir.js';

/**
 * `meshd validate DIR|FILE...`, like `istioctl validate -f`: every error and warning with file
 * and line, exit status 1 when there is an error (warnings alone pass).
 */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('validate mesh config (PeerAuthentication, AuthorizationPolicy, ServiceEntry, WorkloadEntry, DestinationRule, ClusterFederatedTrustDomain, MeshConfig) as istioctl validate does; exits 1 on errors')
    .argument('<paths...>', 'config dirs (every *.yaml / *.yml in them) or single files')
    .action(async (paths: string[]) => {
      const files: ConfigFile[] = [];
      for (const p of paths) {
        let isDir: boolean;
        try {
          isDir = (await stat(p)).isDirectory();
        } catch (err) {
          throw new Error(`cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
        if (isDir) files.push(...(await readConfigFiles(p)));
        else files.push(await readConfigFile(p));
      }
      const snapshot = buildSnapshot(files);
      for (const m of snapshot.messages) process.stdout.write(`${formatMessage(m)}\n`);
      const { errors, warnings } = countLevels(snapshot.messages);
      const what = paths.map((p) => JSON.stringify(p)).join(', ');
      const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
      if (errors > 0) {
        process.stdout.write(`${what}: ${plural(errors, 'error')}, ${plural(warnings, 'warning')} in ${plural(files.length, 'file')}\n`);
        process.exitCode = 1;
        return;
      }
      const parts = [
        plural(snapshot.peerAuthentications.length, 'PeerAuthentication'),
        plural(snapshot.serviceEntries.length, 'ServiceEntry').replace('Entrys', 'Entries'),
        plural(snapshot.workloadEntries.length, 'WorkloadEntry').replace('Entrys', 'Entries'),
      ];
      // The newer kinds are counted when present, so configs without them print as before.
      if (snapshot.authorizationPolicies.length > 0) parts.push(plural(snapshot.authorizationPolicies.length, 'AuthorizationPolicy').replace('Policys', 'Policies'));
      if (snapshot.destinationRules.length > 0) parts.push(plural(snapshot.destinationRules.length, 'DestinationRule'));
      if (snapshot.federatedTrustDomains.length > 0) parts.push(plural(snapshot.federatedTrustDomains.length, 'ClusterFederatedTrustDomain'));
      const counts = parts.join(', ');
      process.stdout.write(`${what} ${warnings > 0 ? `has ${plural(warnings, 'warning')}` : 'is valid'}: ${counts}\n`);
    });
}
