import { buildProgram } from './program.js';

const program = await buildProgram(process.argv.slice(2));
program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`meshd: ${message}\n`);
  process.exit(1);
});
