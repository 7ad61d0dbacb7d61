/** The config parse worker (off-thread-parse.ts): files in, one result per file out, in order. */
import { parentPort } from 'node:worker_threads';
import { parseConfigFile, type ConfigFile } from './build-snapshot.js';
import type { ParseWorkerMessage } from './off-thread-parse.js';

const port = parentPort!;
port.on('message', (m: { files: ConfigFile[] }) => {
  m.files.forEach((f, index) => port.postMessage({ index, result: parseConfigFile(f) } satisfies ParseWorkerMessage));
  port.postMessage({ done: true } satisfies ParseWorkerMessage);
});
