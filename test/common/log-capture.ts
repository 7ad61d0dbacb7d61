import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/common/logger.js';

/** A real (pino) logger whose lines a test can read back, parsed, as soon as they are written. */
export interface LogCapture {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
  /** Every line's msg, one per line. */
  messages(): string;
}

export function captureLogs(level = 'debug'): LogCapture {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, destination: sink }), lines, messages: () => lines.map((l) => String(l.msg)).join('\n') };
}
