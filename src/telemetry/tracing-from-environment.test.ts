// The keel command's tracing setup from OTEL_* variables, in-process: which variables register a
// provider, what is written where, and the warnings for exporters keel cannot serve. The spawned
// keel run with OTEL_TRACES_EXPORTER=console is test/cli-tracing.test.ts.

import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { otlpNotBundledMessage, startTracingFromEnvironment, type EnvironmentTracing } from './tracing-from-environment.js';

let tracing: EnvironmentTracing | undefined;

afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
});

function sink(): { write(text: string): void; text: string } {
  return {
    text: '',
    write(text: string) {
      this.text += text;
    },
  };
}

describe('startTracingFromEnvironment', () => {
  it('writes finished spans as JSON lines to the sink with console, under OTEL_SERVICE_NAME', async () => {
    const stderr = sink();
    tracing = startTracingFromEnvironment({ OTEL_TRACES_EXPORTER: ' Console ', OTEL_SERVICE_NAME: 'clerk' }, stderr);
    expect(tracing).toBeDefined();
    trace.getTracer('test').startSpan('probe', { attributes: { 'gen_ai.operation.name': 'chat' } }).end();
    const [line] = stderr.text.trim().split('\n');
    expect(JSON.parse(line!)).toMatchObject({ name: 'probe', attributes: { 'gen_ai.operation.name': 'chat' }, resource: { attributes: { 'service.name': 'clerk' } } });
  });

  it('defaults service.name to keel and takes OTEL_RESOURCE_ATTRIBUTES', async () => {
    const stderr = sink();
    tracing = startTracingFromEnvironment({ OTEL_TRACES_EXPORTER: 'console', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging,team=finance%20ops,broken' }, stderr);
    trace.getTracer('test').startSpan('probe').end();
    expect(JSON.parse(stderr.text.trim()).resource.attributes).toMatchObject({ 'service.name': 'keel', 'deployment.environment': 'staging', team: 'finance ops' });
  });

  it('registers nothing when unset, none, or OTEL_SDK_DISABLED=true, and writes nothing', () => {
    const stderr = sink();
    for (const environment of [{}, { OTEL_TRACES_EXPORTER: 'none' }, { OTEL_TRACES_EXPORTER: 'console,none' }, { OTEL_TRACES_EXPORTER: 'console', OTEL_SDK_DISABLED: 'true' }]) {
      expect(startTracingFromEnvironment(environment, stderr)).toBeUndefined();
    }
    expect(stderr.text).toBe('');
    expect(trace.getTracer('test').startSpan('probe').isRecording()).toBe(false);
  });

  it('explains otlp and names an unknown exporter, registering nothing for them', () => {
    const stderr = sink();
    expect(startTracingFromEnvironment({ OTEL_TRACES_EXPORTER: 'otlp,zipkin' }, stderr)).toBeUndefined();
    expect(stderr.text).toContain(otlpNotBundledMessage);
    expect(stderr.text).toContain("OTEL_TRACES_EXPORTER names 'zipkin', which keel cannot export to");
  });
});
