import { CLIENT_NS, SERVER_NS } from './mesh.js';

/** AuthorizationPolicies for the greeter servers (app=greeter), shared by the grpc-js-xds and C-core tests. */
export function policy(name: string, action: string, rules: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: ${SERVER_NS}
spec:
  selector:
    matchLabels:
      app: greeter
  action: ${action}
  rules:
${rules}`;
}

export const ALLOW_CALLER_HELLO = policy('allow-caller-hello', 'ALLOW', `  - from:
    - source:
        principals: ["cluster.local/ns/${CLIENT_NS}/sa/caller"]
    to:
    - operation:
        paths: ["/meshd.test.Greeter/Hello"]
`);
export const DENY_CLIENT_NS = policy('deny-client-ns', 'DENY', `  - from:
    - source:
        namespaces: ["${CLIENT_NS}"]
    to:
    - operation:
        paths: ["*/Hello"]
`);
export const AUDIT_ALL = policy('audit-all', 'AUDIT', `  - to:
    - operation:
        methods: ["POST"]
`);
export const ALLOW_ANYONE_HELLO = policy('allow-anyone-hello', 'ALLOW', `  - to:
    - operation:
        paths: ["/meshd.test.Greeter/Hello"]
`);
