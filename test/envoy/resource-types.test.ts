import t from 'tap';
import protobuf from 'protobufjs';
import { envoyRoot, lookupType, typeNameOf } from '../../src/envoy/protos.js';
import { CLUSTER, ENDPOINT, LISTENER, RESOURCE_TYPES, ROUTE, SECRET, resourceType, shortTypeName } from '../../src/envoy/resource-types.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { orderTypes } from '../../src/xds/core/connection.js';
import { XDS_SERVICES } from '../../src/xds/services/definitions.js';

t.test('one descriptor per served type URL, each naming a message of the loaded protos', async (t) => {
  t.same(RESOURCE_TYPES.map((d) => d.typeUrl).sort(), Object.values(TypeUrl).sort());
  for (const d of RESOURCE_TYPES) {
    t.equal(resourceType(d.typeUrl), d, `${d.shortName} found by its type URL`);
    t.equal(lookupType(typeNameOf(d.typeUrl)).fullName, `.${typeNameOf(d.typeUrl)}`, `${d.shortName}: ${typeNameOf(d.typeUrl)} is loaded`);
  }
  t.equal(resourceType('type.googleapis.com/envoy.config.core.v3.Node'), undefined);
});

t.test("each type's gRPC service is Envoy's, with Stream, Delta and Fetch methods of the discovery messages", async (t) => {
  for (const d of RESOURCE_TYPES) {
    const service = envoyRoot().lookupService(d.service.name);
    const methods = service.methods;
    t.same(Object.keys(methods).sort(), [`Delta${d.service.methods}`, `Fetch${d.service.methods}`, `Stream${d.service.methods}`], d.service.name);
    const stream = methods[`Stream${d.service.methods}`] as protobuf.Method;
    t.ok(stream.requestStream && stream.responseStream, `${d.shortName}: Stream is bidirectional`);
    t.equal(stream.resolvedRequestType?.fullName, '.envoy.service.discovery.v3.DiscoveryRequest', `${d.shortName}: Stream takes DiscoveryRequest`);
    t.equal((methods[`Delta${d.service.methods}`] as protobuf.Method).resolvedRequestType?.fullName, '.envoy.service.discovery.v3.DeltaDiscoveryRequest', `${d.shortName}: Delta takes DeltaDiscoveryRequest`);
    t.ok(XDS_SERVICES.some((s) => s.service === d.service.name && s.typeUrl === d.typeUrl && s.short === d.shortName), `${d.shortName}: served`);
  }
});

t.test('the facts the core reads: short names, SotW full state, push order, warming', async (t) => {
  t.same(RESOURCE_TYPES.map((d) => d.shortName), ['cds', 'eds', 'sds', 'lds', 'rds']);
  t.same(RESOURCE_TYPES.filter((d) => d.fullStateInSotw).map((d) => d.shortName), ['cds', 'lds']);
  t.same(orderTypes([TypeUrl.Route, 'type.googleapis.com/b.Other', TypeUrl.Listener, 'type.googleapis.com/a.Other', TypeUrl.Secret, TypeUrl.Endpoint, TypeUrl.Cluster]),
    [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Secret, TypeUrl.Listener, TypeUrl.Route, 'type.googleapis.com/a.Other', 'type.googleapis.com/b.Other'],
    'CDS, EDS, secrets, LDS, RDS, then other types by name');
  t.equal(shortTypeName(TypeUrl.Endpoint), 'eds');
  t.equal(shortTypeName('type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig'), 'typedextensionconfig', 'an unknown type: its message name');
  t.equal(shortTypeName('nodot'), 'nodot');
  t.equal(shortTypeName(''), 'unknown');
  t.same(CLUSTER.warmsOn.filter((d) => d.sameName).map((d) => d.typeUrl), [TypeUrl.Endpoint], 'a changed cluster is followed by its endpoints');
  t.same(LISTENER.warmsOn.map((d) => d.typeUrl).sort(), [TypeUrl.Route, TypeUrl.Secret].sort(), 'listeners warm on routes and secrets');
  t.same(LISTENER.warmsOn.filter((d) => d.sameName), [], 'no resource follows a listener');
});

t.test('nameOf reads the name each message carries', async (t) => {
  t.equal(CLUSTER.nameOf({ name: 'outbound|80||a' }), 'outbound|80||a');
  t.equal(ENDPOINT.nameOf({ cluster_name: 'outbound|80||a' }), 'outbound|80||a');
  t.equal(LISTENER.nameOf({ name: '10.0.0.1_80' }), '10.0.0.1_80');
  t.equal(ROUTE.nameOf({ name: '80' }), '80');
  t.equal(SECRET.nameOf({ name: 'default' }), 'default');
});
