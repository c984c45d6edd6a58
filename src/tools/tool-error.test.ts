// classifyError: the one table that decides what the runner does with a failure. These rows are
// the contract: retry (transient, rate-limited, auth-expired), feed back (invalid-input,
// permission-denied) or fail the workflow (fatal).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { APICallError } from '@ai-sdk/provider';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { silentLogger } from '../util/logger.js';
import { callTool } from './call-tool.js';
import { classifyError, classifyFailure, ErrorClass, isRetryable, ToolError } from './tool-error.js';
import { defineTool, type ToolDefinition } from './tool.js';
import { HttpError } from '../../test/support/http-error.js';

function withCode(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

function named(name: string): Error {
  const error = new Error(`${name} happened`);
  error.name = name;
  return error;
}

describe('classifyError', () => {
  it.each([
    [408, 'transient'],
    [425, 'transient'],
    [429, 'rate-limited'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [599, 'transient'],
    [400, 'invalid-input'],
    [401, 'auth-expired'],
    [403, 'permission-denied'],
    [404, 'invalid-input'],
    [407, 'fatal'],
    [409, 'invalid-input'],
    [422, 'invalid-input'],
  ] as const)('HTTP %i is %s', (status, expected) => {
    expect(classifyError(new HttpError(status))).toBe(expected);
  });

  it('reads the status from statusCode and from a response object too', () => {
    expect(classifyError(Object.assign(new Error('x'), { statusCode: 503 }))).toBe('transient');
    expect(classifyError(Object.assign(new Error('x'), { response: { status: 429 } }))).toBe('rate-limited');
    expect(classifyError({ status: 'not a number' })).toBe('fatal');
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET'])('network code %s is transient', (code) => {
    expect(classifyError(withCode(code))).toBe('transient');
  });

  it.each(['AbortError', 'TimeoutError'])('%s is transient', (name) => {
    expect(classifyError(named(name))).toBe('transient');
  });

  it('finds a network code in nested causes, as fetch reports it', () => {
    const fetchFailure = new TypeError('fetch failed', { cause: withCode('ECONNRESET', 'socket hang up') });
    expect(classifyError(fetchFailure)).toBe('transient');
    const wrapped = new Error('payment failed', { cause: new Error('request failed', { cause: withCode('ECONNREFUSED') }) });
    expect(classifyError(wrapped)).toBe('transient');
    expect(classifyError(new TypeError('fetch failed'))).toBe('transient');
  });

  it('passes a ToolError through with its own class, whatever else it carries', () => {
    for (const errorClass of Object.values(ErrorClass)) {
      expect(classifyError(new ToolError(errorClass, 'declared'))).toBe(errorClass);
    }
    const declaredFatal = Object.assign(new ToolError('fatal', 'no retry', { cause: withCode('ECONNRESET') }), { status: 503 });
    expect(classifyError(declaredFatal)).toBe('fatal');
  });

  it('treats anything it does not recognise as fatal', () => {
    expect(classifyError(new Error('something odd'))).toBe('fatal');
    expect(classifyError(new RangeError('out of range'))).toBe('fatal');
    expect(classifyError(withCode('ENOENT'))).toBe('fatal');
    expect(classifyError('a thrown string')).toBe('fatal');
    expect(classifyError(undefined)).toBe('fatal');
    expect(classifyError(null)).toBe('fatal');
  });
});

describe('ToolError', () => {
  it('carries its class, retry-after, details and cause, and is recognised by marker', () => {
    const cause = new Error('429 from upstream');
    const error = new ToolError('rate-limited', 'slow down', { retryAfterMs: 2000, details: { limit: 10 }, cause });
    expect(error).toMatchObject({ name: 'ToolError', errorClass: 'rate-limited', retryAfterMs: 2000, details: { limit: 10 }, message: 'slow down' });
    expect(error.cause).toBe(cause);
    expect(ToolError.isInstance(error)).toBe(true);
    const copyFromAnotherPackage = Object.assign(new Error('x'), { [Symbol.for('keel.tool-error')]: true });
    expect(ToolError.isInstance(copyFromAnotherPackage)).toBe(true);
    expect(ToolError.isInstance(new Error('plain'))).toBe(false);
    expect(ToolError.isInstance(null)).toBe(false);
  });

  it('retries only transient, rate-limited and auth-expired failures', () => {
    const retryable = Object.values(ErrorClass).filter(isRetryable);
    expect(retryable).toEqual(['transient', 'rate-limited', 'auth-expired']);
  });
});

describe('classifyFailure', () => {
  const now = Date.UTC(2026, 0, 1);

  it('reports the status, code and Retry-After it found, and what decided the class', () => {
    const tooMany = Object.assign(new Error('Too Many Requests'), { status: 429, headers: new Headers({ 'retry-after': '2' }) });
    expect(classifyFailure(tooMany, undefined, now)).toEqual({ errorClass: 'rate-limited', retryAfterMs: 2000, status: 429, reason: 'HTTP 429' });
    const reset = new TypeError('fetch failed', { cause: withCode('ECONNRESET') });
    expect(classifyFailure(reset, undefined, now)).toEqual({ errorClass: 'transient', code: 'ECONNRESET', reason: 'code ECONNRESET' });
    expect(classifyFailure(new Error('odd'), undefined, now)).toEqual({ errorClass: 'fatal', reason: 'unrecognised error' });
  });

  it('keeps a 503 transient and carries its Retry-After for the backoff', () => {
    const unavailable = { status: 503, headers: { 'Retry-After': new Date(now + 7000).toUTCString() } };
    expect(classifyFailure(unavailable, undefined, now)).toMatchObject({ errorClass: 'transient', retryAfterMs: 7000 });
  });

  it('finds a status on a wrapped error, and on response.statusCode as got and Node report it', () => {
    const wrapped = new Error('charge failed', { cause: new HttpError(503) });
    expect(classifyFailure(wrapped)).toMatchObject({ errorClass: 'transient', status: 503, reason: 'HTTP 503' });
    expect(classifyError({ response: { statusCode: 403 } })).toBe('permission-denied');
    // A 2xx/3xx on an error says nothing about what went wrong.
    expect(classifyFailure(Object.assign(new Error('bad body'), { status: 200 }))).toMatchObject({ errorClass: 'fatal', status: 200 });
    // An exit status of a child process is not an HTTP status.
    expect(classifyError(Object.assign(new Error('exited'), { status: 1 }))).toBe('fatal');
  });

  it('honours a ToolError found among the causes', () => {
    const wrapped = new Error('lookup failed', { cause: new ToolError('invalid-input', 'no such claim') });
    expect(classifyFailure(wrapped)).toMatchObject({ errorClass: 'invalid-input', reason: 'ToolError (invalid-input)' });
  });
});

describe('classifyFailure: what fetch (undici) throws', () => {
  async function listen(server: Server): Promise<string> {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  async function fetchFailure(url: string, init?: RequestInit): Promise<unknown> {
    return fetch(url, init).then(
      () => expect.fail('fetch should have failed'),
      (error: unknown) => error,
    );
  }

  it('classifies a connection the server drops (UND_ERR_SOCKET) as transient', async () => {
    const server = createServer((request) => request.socket.destroy());
    try {
      const error = await fetchFailure(await listen(server));
      expect(error).toBeInstanceOf(TypeError);
      expect(classifyFailure(error)).toMatchObject({ errorClass: 'transient', code: 'UND_ERR_SOCKET' });
    } finally {
      server.close();
    }
  });

  it('classifies a refused connection (ECONNREFUSED) as transient', async () => {
    const server = createServer();
    const url = await listen(server);
    await new Promise((resolve) => server.close(resolve));
    const error = await fetchFailure(url);
    expect(classifyFailure(error)).toMatchObject({ errorClass: 'transient', code: 'ECONNREFUSED' });
  });

  it('classifies a URL fetch cannot parse (ERR_INVALID_URL) as fatal: no retry fixes it', async () => {
    const error = await fetchFailure('not a url');
    expect(classifyFailure(error)).toMatchObject({ errorClass: 'fatal', code: 'ERR_INVALID_URL', reason: 'code ERR_INVALID_URL' });
  });

  it('classifies the DOMExceptions of aborted and timed-out signals as transient', async () => {
    const aborted = await fetchFailure('http://127.0.0.1:9/', { signal: AbortSignal.abort() });
    expect(aborted).toMatchObject({ name: 'AbortError' });
    expect(classifyFailure(aborted)).toMatchObject({ errorClass: 'transient', reason: 'AbortError' });
    const timedOut = await fetchFailure('http://127.0.0.1:9/', { signal: AbortSignal.abort(new DOMException('timed out', 'TimeoutError')) });
    expect(classifyFailure(timedOut)).toMatchObject({ errorClass: 'transient', reason: 'TimeoutError' });
    const nodeAbort = await sleep(1, undefined, { signal: AbortSignal.abort() }).catch((error: unknown) => error);
    expect(classifyFailure(nodeAbort)).toMatchObject({ errorClass: 'transient', code: 'ABORT_ERR' });
  });

  it.each([
    ['UND_ERR_HEADERS_TIMEOUT', 'transient'],
    ['UND_ERR_CONNECT_TIMEOUT', 'transient'],
    ['UND_ERR_CLOSED', 'transient'],
    ['UND_ERR_ABORTED', 'transient'],
    ['UND_ERR_INVALID_ARG', 'fatal'],
    ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'fatal'],
    ['CERT_HAS_EXPIRED', 'fatal'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'fatal'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'fatal'],
    ['EHOSTUNREACH', 'transient'],
    ['SOME_UNKNOWN_CODE', 'transient'],
  ] as const)("reads fetch's cause code %s as %s", (code, expected) => {
    // An unknown cause code says nothing, so the bare "fetch failed" decides: a network failure.
    expect(classifyError(new TypeError('fetch failed', { cause: withCode(code) }))).toBe(expected);
  });

  it.each([
    ['ERR_STREAM_PREMATURE_CLOSE', 'transient'],
    ['ERR_HTTP2_STREAM_ERROR', 'transient'],
    ['ERR_SOCKET_CONNECTION_TIMEOUT', 'transient'],
    ['ERR_INVALID_ARG_TYPE', 'fatal'],
    ['ERR_OUT_OF_RANGE', 'fatal'],
  ] as const)('reads the Node code %s as %s', (code, expected) => {
    expect(classifyFailure(withCode(code))).toMatchObject({ errorClass: expected, code });
  });
});

describe('classifyFailure: AI SDK APICallError', () => {
  function apiCallError(options: { statusCode?: number; isRetryable?: boolean; responseHeaders?: Record<string, string>; cause?: unknown }) {
    return new APICallError({ message: 'provider failed', url: 'http://127.0.0.1/v1/chat/completions', requestBodyValues: {}, ...options });
  }

  it.each([
    [503, 'transient'],
    [429, 'rate-limited'],
    [401, 'auth-expired'],
    [403, 'permission-denied'],
    [422, 'invalid-input'],
    // The AI SDK calls a 409 retryable; Keel reads the status: the same request would conflict again.
    [409, 'invalid-input'],
  ] as const)('reads statusCode %i as %s', (statusCode, expected) => {
    expect(classifyFailure(apiCallError({ statusCode }))).toMatchObject({ errorClass: expected, status: statusCode });
  });

  it('takes the Retry-After from responseHeaders', () => {
    const error = apiCallError({ statusCode: 429, responseHeaders: { 'retry-after': '12' } });
    expect(classifyFailure(error)).toMatchObject({ errorClass: 'rate-limited', retryAfterMs: 12_000 });
  });

  it('falls back on isRetryable when there is no status, then on the cause', () => {
    expect(classifyFailure(apiCallError({ isRetryable: true }))).toMatchObject({ errorClass: 'transient', reason: 'AI SDK APICallError (retryable, no status)' });
    expect(classifyError(apiCallError({ isRetryable: false }))).toBe('fatal');
    expect(classifyError(apiCallError({ isRetryable: false, cause: withCode('ECONNRESET') }))).toBe('transient');
  });

  it("recognises the OpenAI and Anthropic SDKs' connection errors by name", () => {
    expect(classifyError(named('APIConnectionTimeoutError'))).toBe('transient');
    expect(classifyError(named('APIConnectionError'))).toBe('transient');
  });
});

describe('classifyFailure: the tool overrides the default', () => {
  function toolWith(classify: ToolDefinition['classify']) {
    return defineTool({ name: 'pay_claim', description: 'Pays.', input: z.object({}), classify, execute: () => null });
  }
  const conflict = new HttpError(409);

  it("uses the tool's class when it gives one", () => {
    const tool = toolWith((error) => ((error as { status?: number }).status === 409 ? 'transient' : undefined));
    expect(classifyFailure(conflict, tool)).toMatchObject({ errorClass: 'transient', status: 409, reason: "tool 'pay_claim' classify()" });
    expect(classifyError(conflict, tool)).toBe('transient');
  });

  it('uses the default when the tool returns undefined', () => {
    expect(classifyFailure(conflict, toolWith(() => undefined))).toMatchObject({ errorClass: 'invalid-input', reason: 'HTTP 409' });
  });

  it("sees Keel's own errors too, so a tool can declare its timeouts fatal", () => {
    const timeout = new ToolError('transient', "Tool 'pay_claim' timed out after 5000 ms");
    const tool = toolWith((error) => (ToolError.isInstance(error) && /timed out/.test(error.message) ? 'fatal' : undefined));
    expect(classifyError(timeout, tool)).toBe('fatal');
  });

  it('falls back to the default, and says so, when the tool classifier throws or answers nonsense', () => {
    const throwing = toolWith(() => {
      throw new Error('classifier bug');
    });
    expect(classifyFailure(conflict, throwing)).toMatchObject({
      errorClass: 'invalid-input',
      reason: "HTTP 409; tool 'pay_claim' classify() threw (classifier bug), default used",
    });
    const nonsense = toolWith(() => 'retry' as ErrorClass);
    expect(classifyFailure(conflict, nonsense)).toMatchObject({
      errorClass: 'invalid-input',
      reason: "HTTP 409; tool 'pay_claim' classify() returned 'retry', not an error class, default used",
    });
  });
});

describe('classifyFailure: aborts as callTool delivers them', () => {
  function contextWith(signal: AbortSignal) {
    return {
      workflowId: 'wf_1', step: 1, idempotencyKey: 'wf_1:1', attempt: 1, principal: { id: 'alice' }, signal, logger: silentLogger, input: null,
    credentials: async () => 'token-for-tests',
      get: () => undefined, set: () => undefined, append: () => undefined,
    };
  }
  const fetching = defineTool({
    name: 'fetch_page',
    description: 'Fetches a page that never answers.',
    input: z.object({}),
    timeoutMs: 20,
    execute: (_args, context) =>
      new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true })),
  });

  it("classifies the attempt's own timeout as transient: it is a ToolError", async () => {
    const error = await callTool(fetching, {}, contextWith(new AbortController().signal)).catch((rejection: unknown) => rejection);
    expect(classifyFailure(error)).toMatchObject({ errorClass: 'transient', reason: 'ToolError (transient)' });
  });

  it('classifies a cancel of the workflow as transient too, which is why the runner checks its own signal first', async () => {
    const workflow = new AbortController();
    const call = callTool(fetching, {}, contextWith(workflow.signal));
    workflow.abort();
    const error = await call.catch((rejection: unknown) => rejection);
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(classifyError(error)).toBe('transient');
  });
});
