import { Option } from 'commander';
import { resolve } from 'node:path';
import { DATA_DIR, TRUST_DOMAIN } from '../common/defaults.js';

/** Flags shared by every command that touches the data dir (CA material, token key). */
export function dataDirOption(): Option {
  return new Option('--data-dir <dir>', 'where meshd keeps its CA material and token signing key')
    .env('MESHD_DATA_DIR')
    .default(DATA_DIR);
}

export function trustDomainOption(): Option {
  return new Option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh (Istio meshConfig.trustDomain)')
    .default(TRUST_DOMAIN);
}

export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'pino log level')
    .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .env('MESHD_LOG_LEVEL')
    .default('info');
}

export function absolute(dir: string): string {
  return resolve(process.cwd(), dir);
}

/** The shared store of several replicas (PostgreSQL); without it, state lives in the data dir. */
export function storeOption(): Option {
  return new Option('--store <url>', 'shared store for several replicas: postgres://USER@HOST:PORT/DATABASE (CA roots, token key, mesh config); default: the data dir')
    .env('MESHD_STORE');
}

export function storeKeyFileOption(): Option {
  return new Option('--store-key-file <file>', 'key-encryption key(s) for the private keys in --store (mode 0600; required with --store; never stored in the database)')
    .env('MESHD_STORE_KEY_FILE');
}
