import { Counter, Gauge, type CounterConfiguration, type GaugeConfiguration, type Registry } from 'prom-client';

/**
 * prom-client refuses a second metric of the same name on a registry. The ALS service
 * is added to both gRPC ports (TLS and loopback plaintext) with one registry, so its
 * metrics are taken from the registry when already there.
 */
export function counterOn<T extends string>(registry: Registry, config: Omit<CounterConfiguration<T>, 'registers'>): Counter<T> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Counter) return existing as Counter<T>;
  return new Counter({ ...config, registers: [registry] });
}

export function gaugeOn<T extends string>(registry: Registry, config: Omit<GaugeConfiguration<T>, 'registers'>): Gauge<T> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Gauge) return existing as Gauge<T>;
  return new Gauge({ ...config, registers: [registry] });
}
