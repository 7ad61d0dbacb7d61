import type { Logger } from '../common/logger.js';
import type { Clock } from '../common/clock.js';
import type { MeshdAgent } from './agent.js';

export interface LocalSdsOptions {
  agent: MeshdAgent;
  socketPath: string;
  logger: Logger;
  clock: Clock;
}

export async function startLocalSds(_opts: LocalSdsOptions): Promise<{ stop(): Promise<void> }> {
  throw new Error('--sds-socket is not implemented yet');
}
