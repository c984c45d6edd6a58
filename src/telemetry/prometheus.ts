// The Prometheus endpoint of `keel worker --metrics-port`: an OpenTelemetry MeterProvider whose
// reader is the Prometheus exporter's HTTP server, bound to 127.0.0.1 only (metrics name agents,
// users' departments and error classes: they are not for the network at large; put a proxy in
// front to expose them). The library never imports this module: only the CLI does, on demand.

import type { MeterProvider as ApiMeterProvider } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { KeelError } from '../errors.js';

export interface MetricsEndpoint {
  meterProvider: ApiMeterProvider;
  url: string;
  close(): Promise<void>;
}

export async function startMetricsEndpoint(port: number, host = '127.0.0.1'): Promise<MetricsEndpoint> {
  let exporter!: PrometheusExporter;
  await new Promise<void>((resolve, reject) => {
    exporter = new PrometheusExporter({ host, port }, (error) => (error ? reject(error) : resolve()));
  }).catch((error: unknown) => {
    throw new KeelError('BAD_INPUT', `Cannot serve metrics on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}. Choose a free port with --metrics-port.`);
  });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  return {
    meterProvider,
    url: `http://${host}:${port}/metrics`,
    close: () => meterProvider.shutdown(),
  };
}
