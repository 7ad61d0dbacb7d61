import { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * The meshd commands, in the order a newcomer meets them (the order of `meshd --help`). Each
 * lives in its own file under src/cli/ and adds itself to the program; concepts and flag names
 * follow istioctl / pilot-discovery where they match.
 *
 * A command's module is imported only when it is the one being run: each pulls in its part of
 * meshd (the server alone is about 400 modules), and a short command such as `meshd token
 * issue` should not pay for gRPC, the xDS generators and PostgreSQL's client to start.
 */
const COMMANDS: ReadonlyArray<{ name: string; load: () => Promise<Register> }> = [
  { name: 'serve', load: async () => (await import('./serve.js')).registerServe },
  { name: 'ca', load: async () => (await import('./ca.js')).registerCa },
  { name: 'token', load: async () => (await import('./token.js')).registerToken },
  { name: 'validate', load: async () => (await import('./validate.js')).registerValidate },
  { name: 'config', load: async () => (await import('./config.js')).registerConfig },
  { name: 'check', load: async () => (await import('./check.js')).registerCheck },
  { name: 'bootstrap', load: async () => (await import('./bootstrap.js')).registerBootstrap },
  { name: 'proxy-status', load: async () => (await import('./proxy-status.js')).registerProxyStatus },
  { name: 'agent', load: async () => (await import('./agent.js')).registerAgent },
  { name: 'grpc-bootstrap', load: async () => (await import('./grpc-bootstrap.js')).registerGrpcBootstrap },
];

/**
 * The meshd command tree for `args` (process.argv without node and the script): only the
 * command `args` names, or every command when it names none (help, or a mistyped command,
 * which commander answers with the list and a suggestion).
 */
export async function buildProgram(args: readonly string[] = []): Promise<Command> {
  const program = new Command('meshd')
    .description('A mesh control plane for Envoy: SPIFFE CA, SDS and xDS with Istio-style automatic mTLS.')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  const named = COMMANDS.find((c) => c.name === args[0]);
  for (const command of named ? [named] : COMMANDS) (await command.load())(program);
  return program;
}
