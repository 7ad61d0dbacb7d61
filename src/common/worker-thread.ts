import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The URL of a worker module beside `moduleUrl` (pass `import.meta.url`): .js in dist/, .ts
 * when the sources run under tsx.
 */
export function siblingModuleUrl(name: string, moduleUrl: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(moduleUrl))}`, moduleUrl);
}

/**
 * A worker thread for `url`. From the sources under tsx (tests, `tsx src/...`) a worker does
 * not inherit tsx's loader, so a .ts entry is started through a bootstrap that registers it.
 */
export function startWorker(url: URL, options?: WorkerOptions): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const boot = `const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}); register(); await import(${JSON.stringify(url.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), options);
}
