// classifyError: the one table that decides what the runner does with a failure. These rows are
// the contract: retry (transient, rate-limited, auth-expired), feed back (invalid-input,
// permission-denied) or fail the workflow (fatal).

import { describe, expect, it } from 'vitest';
import { classifyError, ErrorClass, isRetryable, ToolError } from './tool-error.js';

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

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
