// The keel command's tracing, set up from the standard OTEL_* environment variables, so an
// operator can see a CLI run's or a worker's spans without writing code. Only what the installed
// packages can do is offered:
//   OTEL_TRACES_EXPORTER  console (spans as JSON lines on stderr), none; unset means none, since
//                         the spec's default (otlp) is not bundled. otlp prints how to wire it.
//   OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES   the resource (service.name defaults to 'keel').
//   OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG  read by the SDK's tracer provider itself (from process.env).
//   OTEL_SDK_DISABLED=true                        no tracing, whatever else is set.
// The console exporter writes to stderr, not stdout as the SDK's ConsoleSpanExporter does, so
// `--json` output stays machine-readable.

import { context, trace, type HrTime } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface TextSink {
  write(text: string): unknown;
}

export interface EnvironmentTracing {
  /** Exports what is still buffered and unregisters the provider. */
  shutdown(): Promise<void>;
}

export const otlpNotBundledMessage =
  "keel: OTEL_TRACES_EXPORTER=otlp, but no OTLP exporter is bundled with keel, so no spans are exported. " +
  'To send spans over OTLP, install @opentelemetry/exporter-trace-otlp-http (or -grpc) in your project, register a tracer provider ' +
  'with it before calling createKeel (see docs/observability.md), and run your workers from that code; ' +
  'or use OTEL_TRACES_EXPORTER=console to print spans to stderr.\n';

/**
 * Registers a global tracer provider as the OTEL_* variables ask, or none. Warnings (otlp, an
 * unknown exporter name) go to `stderr`; tracing stays off rather than failing the command.
 */
export function startTracingFromEnvironment(environment: NodeJS.ProcessEnv, stderr: TextSink): EnvironmentTracing | undefined {
  if ((environment.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return undefined;
  const names = (environment.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  if (names.includes('none')) return undefined;
  const exporters: SpanExporter[] = [];
  for (const name of new Set(names)) {
    if (name === 'console') exporters.push(new StderrSpanExporter(stderr));
    else if (name === 'otlp') stderr.write(otlpNotBundledMessage);
    else stderr.write(`keel: OTEL_TRACES_EXPORTER names '${name}', which keel cannot export to; it knows console and none (otlp needs your own provider, see docs/observability.md). No spans are exported to it.\n`);
  }
  if (exporters.length === 0) return undefined;

  const resource = defaultResource().merge(resourceFromAttributes(resourceAttributes(environment)));
  const provider = new BasicTracerProvider({ resource, spanProcessors: exporters.map((exporter) => new SimpleSpanProcessor(exporter)) });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/** OTEL_RESOURCE_ATTRIBUTES (key=value pairs, comma-separated, values percent-encoded), then OTEL_SERVICE_NAME over its service.name. */
function resourceAttributes(environment: NodeJS.ProcessEnv): Record<string, string> {
  const attributes: Record<string, string> = { 'service.name': 'keel' };
  for (const pair of (environment.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',')) {
    const separator = pair.indexOf('=');
    if (separator <= 0) continue;
    try {
      attributes[pair.slice(0, separator).trim()] = decodeURIComponent(pair.slice(separator + 1).trim());
    } catch {
      // A malformed percent-encoding: the spec says to drop that attribute, not the rest.
    }
  }
  const serviceName = environment.OTEL_SERVICE_NAME?.trim();
  if (serviceName) attributes['service.name'] = serviceName;
  return attributes;
}

/** One JSON object per finished span on a line of stderr, with the fields the SDK's ConsoleSpanExporter prints. */
export class StderrSpanExporter implements SpanExporter {
  constructor(private readonly sink: TextSink) {}

  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    for (const span of spans) this.sink.write(`${JSON.stringify(spanInfo(span))}\n`);
    done({ code: 0 }); // ExportResultCode.SUCCESS, from @opentelemetry/core, which keel does not depend on directly
  }

  async shutdown(): Promise<void> {}
}

function spanInfo(span: ReadableSpan) {
  return {
    resource: { attributes: span.resource.attributes },
    instrumentationScope: span.instrumentationScope,
    traceId: span.spanContext().traceId,
    parentSpanId: span.parentSpanContext?.spanId,
    name: span.name,
    id: span.spanContext().spanId,
    kind: span.kind,
    timestamp: microseconds(span.startTime),
    duration: microseconds(span.duration),
    attributes: span.attributes,
    status: span.status,
    events: span.events,
    links: span.links,
  };
}

function microseconds([seconds, nanoseconds]: HrTime): number {
  return Math.round(seconds * 1e6 + nanoseconds / 1e3);
}
