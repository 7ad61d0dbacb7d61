import * as fc from 'fast-check';
import { formatNodeId, nodeClaims, nodeWorkloadRef, parseNodeId } from '../../src/mesh/node-identity.js';
import { ContractViolation, text, utf8, type FuzzTarget } from '../target.js';

/** The node-id parser: ids come from any client's Node.id. It returns a value or undefined, never throws. */
export const nodeId: FuzzTarget = {
  name: 'node-id',
  about: 'parseNodeId and the node-id half of nodeWorkloadRef/nodeClaims: a value or undefined, never a throw; parse(format(x)) = x',
  seeds: () => ['sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local', 'router~10.0.0.2~gw.istio-system~istio-system.svc.cluster.local', '~~~', 'a~b', 'sidecar~~.~.svc.'].map(utf8),
  generators: [fc.tuple(fc.array(fc.constantFrom('~', '.', 'a', 'svc', '.svc.'), { maxLength: 8 }), fc.integer({ min: 1, max: 50_000 })).map(([p, n]) => utf8(p.join('').repeat(n)))],
  check(input) {
    const id = text(input);
    const parsed = parseNodeId(id);
    const ref = nodeWorkloadRef({ id, metadata: {} });
    const claims = nodeClaims({ id, metadata: {} });
    // Without metadata, the workload a node names is exactly its node id's, and only a parsed id names one.
    if ((ref === undefined) !== (parsed === undefined) || ref?.name !== parsed?.name || ref?.namespace !== parsed?.namespace) {
      throw new ContractViolation(`nodeWorkloadRef(${JSON.stringify(id)}) = ${JSON.stringify(ref)} but parseNodeId = ${JSON.stringify(parsed)}`);
    }
    if (claims.workload?.name !== ref?.name || claims.namespace !== parsed?.namespace) {
      throw new ContractViolation(`nodeClaims(${JSON.stringify(id)}) disagrees with parseNodeId: ${JSON.stringify(claims)}`);
    }
    if (parsed !== undefined && formatNodeId(parsed) !== id) throw new ContractViolation(`format(parse(${JSON.stringify(id)})) = ${formatNodeId(parsed)}`);
    return parsed === undefined ? '-' : 'v';
  },
  property: {
    arbitrary: fc.record({
      type: fc.constantFrom('sidecar', 'router'),
      ip: fc.oneof(fc.ipV4(), fc.ipV6()),
      name: fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?$/),
      namespace: fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/),
      dnsDomain: fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/),
    }),
    check(value) {
      const v = value as { type: string; ip: string; name: string; namespace: string; dnsDomain: string };
      const id = formatNodeId(v);
      const parsed = parseNodeId(id);
      if (JSON.stringify(parsed) !== JSON.stringify(v)) throw new ContractViolation(`parseNodeId(${id}) = ${JSON.stringify(parsed)}`);
    },
  },
};
