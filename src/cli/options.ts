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
