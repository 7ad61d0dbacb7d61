import { Command } from 'commander';
import { registerProxyStatus } from './proxy-status.js';
import { registerServe } from './serve.js';
import { registerToken } from './token.js';
import { registerValidate } from './validate.js';
import { registerBootstrap } from './bootstrap.js';
import { registerCheck } from './check.js';
import { registerAgent } from './agent.js';
import { registerGrpcBootstrap } from './grpc-bootstrap.js';
import { registerCa } from './ca.js';
import { registerConfig } from './config.js';

/**
 * The meshd command tree. Each command lives in its own file under src/cli/ and adds
 * itself here; concepts and flag names follow istioctl / pilot-discovery where they match.
 */
export function buildProgram(): Command {
  const program = new Command('meshd')
    .description('A mesh control plane for Envoy: SPIFFE CA, SDS and xDS with Istio-style automatic mTLS.')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  // Commands register in the order a newcomer meets them.
  registerServe(program);
  registerCa(program);
  registerToken(program);
  registerValidate(program);
  registerConfig(program);
  registerCheck(program);
  registerBootstrap(program);
  registerProxyStatus(program);
  registerAgent(program);
  registerGrpcBootstrap(program);
  return program;
}
