import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { writeFileAtomic } from '../common/atomic-file.js';
import { systemClock } from '../common/clock.js';
import { DurationError, formatDuration, parseDuration } from '../common/duration.js';
import { CA_REFRESH_INTERVAL_MS, MAX_WORKLOAD_CERT_TTL_MS, ROOT_CERT_TTL_MS, ROOT_ROTATION_OVERLAP_MS, WORKLOAD_CERT_TTL_MS } from '../common/defaults.js';
import { createLogger } from '../common/logger.js';
import { openCertificateAuthority, type ManagedCertificateAuthority } from '../ca/authority.js';
import { bundlePem } from '../ca/bundle.js';
import { LEAF_KEY_TYPES, ROOT_KEY_TYPES } from '../ca/keys.js';
import { workloadId } from '../ca/spiffe-id.js';
import type { LeafKeyType, RootKeyType } from '../ca/types.js';
import { absolute, dataDirOption, logLevelOption, storeKeyFileOption, storeOption, trustDomainOption } from './options.js';
import { withCliStore } from './store-access.js';
import { StoreRootBackend } from '../store/ca-root-backend.js';
import { redactStoreUrl } from '../store/postgres/store-url.js';
import type { RootBackend } from '../ca/root-backend.js';

/**
 * `meshd ca ...`: the CA in the data dir, without a running server. Every command opens
 * the CA as `meshd serve` does (creating the built-in root if the data dir is new), so the
 * flags that shape a new root carry serve's names and defaults. Logs go to stderr; stdout
 * carries only the command's output.
 */

function durationArg(value: string): string {
  try {
    parseDuration(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof DurationError ? e.message : String(e));
  }
  return value;
}

interface CaFlags {
  dataDir: string;
  caDir?: string;
  trustDomain: string;
  rootKeyType: RootKeyType;
  rootTtl: string;
  maxWorkloadCertTtl: string;
  logLevel: string;
  store?: string;
  storeKeyFile?: string;
}

/** The flags that decide which CA a command opens (the same names and defaults as `meshd serve`). */
function addCaFlags(cmd: Command, opts: { pluginCa: boolean }): Command {
  cmd.addOption(dataDirOption()).addOption(storeOption()).addOption(storeKeyFileOption()).addOption(trustDomainOption());
  if (opts.pluginCa) {
    cmd.addOption(new Option('--ca-dir <dir>', "plug-in CA in Istio's cacerts layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) instead of the built-in root").env('MESHD_CA_DIR'));
  }
  return cmd
    .addOption(new Option('--root-key-type <type>', 'key type of a newly created built-in root').choices([...ROOT_KEY_TYPES]).default('ec-p256'))
    .addOption(new Option('--root-ttl <duration>', 'lifetime of a newly created built-in root (Istio CITADEL_SELF_SIGNED_CA_CERT_TTL)').default(formatDuration(ROOT_CERT_TTL_MS)).argParser(durationArg))
    .addOption(new Option('--max-workload-cert-ttl <duration>', 'longest SVID lifetime; longer requests are rejected (Istio MAX_WORKLOAD_CERT_TTL)').default(formatDuration(MAX_WORKLOAD_CERT_TTL_MS)).argParser(durationArg))
    .addOption(logLevelOption());
}

/** Opens the CA of the data dir, or of the shared store with --store, for the length of `use`. */
async function withCa<T>(flags: CaFlags, extra: { rotationOverlapMs?: number }, use: (ca: ManagedCertificateAuthority) => Promise<T>): Promise<T> {
  if (!flags.store) return use(await openCa(flags, extra));
  const url = flags.store;
  return withCliStore({ store: url, storeKeyFile: flags.storeKeyFile, logLevel: flags.logLevel }, async (store) => {
    const logger = createLogger({ level: flags.logLevel, destination: process.stderr }).child({ component: 'ca' });
    const backend = await StoreRootBackend.open({ ca: store.ca, feed: store.feed, leader: store.leader, health: store.health, logger, location: redactStoreUrl(url) });
    try {
      return await use(await openCa(flags, extra, backend));
    } finally {
      backend.close();
    }
  });
}

function openCa(flags: CaFlags, extra: { rotationOverlapMs?: number } = {}, rootBackend?: RootBackend): Promise<ManagedCertificateAuthority> {
  return openCertificateAuthority({
    dataDir: absolute(flags.dataDir),
    ...(rootBackend ? { rootBackend } : {}),
    ...(flags.caDir ? { caDir: absolute(flags.caDir) } : {}),
    trustDomain: flags.trustDomain,
    rootKeyType: flags.rootKeyType,
    rootTtlMs: parseDuration(flags.rootTtl),
    maxLeafTtlMs: parseDuration(flags.maxWorkloadCertTtl),
    ...extra,
    clock: systemClock,
    logger: createLogger({ level: flags.logLevel, destination: process.stderr }).child({ component: 'ca' }),
    registry: new Registry(),
    autoRotate: false,
  });
}

export function registerCa(program: Command): void {
  const ca = program
    .command('ca')
    .description('the certificate authority in the data dir: print the trust bundle, issue an SVID, rotate the root');

  addCaFlags(ca.command('root'), { pluginCa: true })
    .description('print the trust bundle: every root, PEM (Istio root-cert.pem), or the SPIFFE bundle JSON')
    .addOption(new Option('--format <format>', 'pem, or spiffe (JWK Set with spiffe_sequence, as served on /trust-bundle)').choices(['pem', 'spiffe']).default('pem'))
    .action(async (opts: CaFlags & { format: 'pem' | 'spiffe' }) => {
      await withCa(opts, {}, async (authority) => {
        process.stdout.write(opts.format === 'pem' ? bundlePem(authority.trustBundle()) : `${JSON.stringify(authority.bundleJwks(), null, 2)}\n`);
      });
    });

  addCaFlags(ca.command('issue'), { pluginCa: true })
    .description("issue an X.509-SVID for spiffe://<trust-domain>/ns/<ns>/sa/<sa> and write Istio's files: cert-chain.pem, key.pem (0600), root-cert.pem")
    .requiredOption('-n, --namespace <ns>', 'namespace of the workload')
    .requiredOption('-s, --service-account <sa>', 'service account of the workload')
    .addOption(new Option('--key-type <type>', 'key pair meshd generates for the SVID').choices([...LEAF_KEY_TYPES]).default('ec-p256'))
    .addOption(new Option('--ttl <duration>', 'SVID lifetime (at most --max-workload-cert-ttl)').default(formatDuration(WORKLOAD_CERT_TTL_MS)).argParser(durationArg))
    .option('--dns-name <name...>', 'extra DNS SANs beside the SPIFFE ID (e.g. for a server certificate)')
    .requiredOption('-o, --out <dir>', 'directory to write the three files into (created if missing)')
    .action(async (opts: CaFlags & { namespace: string; serviceAccount: string; keyType: LeafKeyType; ttl: string; dnsName?: string[]; out: string }) => {
      const spiffeId = workloadId(opts.trustDomain, opts.namespace, opts.serviceAccount);
      const issued = await withCa(opts, {}, (authority) => authority.issue({ spiffeId, keyType: opts.keyType, ttlMs: parseDuration(opts.ttl), ...(opts.dnsName ? { dnsNames: opts.dnsName } : {}) }));
      const out = absolute(opts.out);
      await writeFileAtomic(join(out, 'key.pem'), issued.keyPem, { mode: 0o600 });
      await writeFileAtomic(join(out, 'cert-chain.pem'), issued.chainPem, { mode: 0o644 });
      await writeFileAtomic(join(out, 'root-cert.pem'), issued.rootsPem, { mode: 0o644 });
      process.stderr.write(`wrote ${join(out, 'cert-chain.pem')}, ${join(out, 'key.pem')} (0600), ${join(out, 'root-cert.pem')}\n`
        + `  ${spiffeId}, ${issued.keyType}, serial ${issued.serialHex}, valid until ${issued.notAfter.toISOString()}\n`);
    });

  addCaFlags(ca.command('rotate-root'), { pluginCa: false })
    .description('prepare a new built-in root: in the trust bundle at once, signing after --overlap; the old root stays trusted until every SVID it signed has expired. '
      + 'A running `meshd serve` on the same data dir picks the change up from the journal within ' + formatDuration(CA_REFRESH_INTERVAL_MS) + '; replicas on the same --store within a second')
    .addOption(new Option('--overlap <duration>', 'how long the new root is trusted before it signs (let every peer learn it first)').default(formatDuration(ROOT_ROTATION_OVERLAP_MS)).argParser(durationArg))
    .action(async (opts: CaFlags & { overlap: string }) => {
      const overlapMs = parseDuration(opts.overlap);
      await withCa(opts, { rotationOverlapMs: overlapMs }, async (authority) => {
        const root = await authority.prepareNextRoot({ overlapMs });
        const previous = authority.status().roots.find((r) => r.pruneAt && r.id !== root.id && r.state !== 'removed');
        process.stdout.write(`prepared ${root.id} (${root.keyType}, SHA-256 ${root.fingerprint256})\n`
          + `  in the trust bundle now (spiffe_sequence ${authority.trustBundle().sequence}); signs from ${root.activateAt!.toISOString()} (overlap ${formatDuration(overlapMs)})\n`
          + (previous ? `  ${previous.id} stays trusted until ${previous.pruneAt!.toISOString()}, when every SVID it signed has expired\n` : ''));
      });
    });

  addCaFlags(ca.command('status'), { pluginCa: true })
    .description('list the roots: which signs, which are trusted, when the next rotation is due')
    .action(async (opts: CaFlags) => {
      const status = await withCa(opts, {}, async (authority) => authority.status());
      const lines = [`${status.mode} CA for ${status.trustDomain} in ${status.directory}; spiffe_sequence ${status.bundleSequence}`];
      for (const r of status.roots) {
        const when = [
          r.activateAt ? `signs from ${r.activateAt.toISOString()}` : '',
          r.pruneAt ? `trusted until ${r.pruneAt.toISOString()}` : '',
          `expires ${r.notAfter.toISOString()}`,
        ].filter(Boolean).join(', ');
        lines.push(`  ${r.id.padEnd(8)} ${r.state.padEnd(8)} ${r.keyType.padEnd(8)} ${r.fingerprint256.slice(0, 16)}  ${when}`);
      }
      if (status.nextRotationAt) lines.push(`automatic rotation (serve) prepares the next root at ${status.nextRotationAt.toISOString()}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
