// Retry-After parsing (RFC 9110 §10.2.3): both forms, the obsolete date forms, the cap, and
// finding the header on what fetch, the AI SDK and other clients throw.

import { APICallError } from '@ai-sdk/provider';
import { describe, expect, it } from 'vitest';
import { maxRetryAfterMs, parseRetryAfter, retryAfterFromError } from './retry-after.js';
import { ToolError } from './tool-error.js';

const now = Date.UTC(1994, 10, 6, 8, 49, 0); // 40 s before the RFC's example date
const exampleDate = 'Sun, 06 Nov 1994 08:49:37 GMT';

describe('parseRetryAfter', () => {
  it.each([
    ['0', 0],
    ['120', 120_000],
    ['  7 ', 7000],
    ['1.5', 1500],
    ['0.0001', 1],
  ])('reads delta-seconds %j as %i ms', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it.each([
    ['IMF-fixdate', exampleDate],
    ['RFC 850', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ['asctime', 'Sun Nov  6 08:49:37 1994'],
  ])('reads an HTTP-date in %s form as the time until it', (_form, value) => {
    expect(parseRetryAfter(value, now)).toBe(37_000);
  });

  it('reads an asctime date as UTC whatever the local zone', () => {
    // asctime has no zone; Date.parse alone would read it as local time.
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(new Date(Date.UTC(2000, 0, 1)).getTimezoneOffset()).toBe(300); // the zone did change
      expect(parseRetryAfter('Sun Nov  6 09:49:00 1994', now)).toBe(3_600_000);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('answers 0 for a date in the past', () => {
    expect(parseRetryAfter(exampleDate, now + 3_600_000)).toBe(0);
    expect(parseRetryAfter(exampleDate, Date.parse(exampleDate))).toBe(0);
  });

  it.each([null, undefined, '', '   ', '-5', '+5', '1e3', 'soon', 'foo 1', '5 seconds', '0x10', 'Sun, 06 Nov 1994 25:49:37 GMT', '2026-01-01T00:00:00Z'])(
    'ignores %j',
    (value) => {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    },
  );

  it('caps absurd waits at one day', () => {
    expect(maxRetryAfterMs).toBe(86_400_000);
    expect(parseRetryAfter('86400', now)).toBe(86_400_000);
    expect(parseRetryAfter('86401', now)).toBe(86_400_000);
    expect(parseRetryAfter('99999999999999999999', now)).toBe(86_400_000);
    expect(parseRetryAfter('Fri, 31 Dec 9999 23:59:59 GMT', now)).toBe(86_400_000);
  });
});

describe('retryAfterFromError', () => {
  const nowIso = Date.UTC(2026, 0, 1);

  it('reads a fetch Response thrown as is, or under error.response', () => {
    const response = new Response(null, { status: 429, headers: { 'Retry-After': '3' } });
    expect(retryAfterFromError(response, nowIso)).toBe(3000);
    const error = Object.assign(new Error('HTTP 429'), { response });
    expect(retryAfterFromError(error, nowIso)).toBe(3000);
  });

  it('reads plain header records whatever the case of the name, and arrays of values', () => {
    expect(retryAfterFromError({ response: { status: 503, headers: { 'retry-after': '2' } } }, nowIso)).toBe(2000);
    expect(retryAfterFromError({ headers: { 'Retry-After': ['4', '9'] } }, nowIso)).toBe(4000);
    expect(retryAfterFromError({ headers: { 'retry-after': 5 } }, nowIso)).toBe(5000);
  });

  it("reads the AI SDK's APICallError responseHeaders", () => {
    const error = new APICallError({
      message: 'Too Many Requests',
      url: 'http://127.0.0.1/v1/chat/completions',
      requestBodyValues: {},
      statusCode: 429,
      responseHeaders: { 'retry-after': new Date(nowIso + 10_000).toUTCString() },
    });
    expect(retryAfterFromError(error, nowIso)).toBe(10_000);
  });

  it('prefers retry-after-ms, sent by OpenAI and Azure, for its precision', () => {
    expect(retryAfterFromError({ headers: new Headers({ 'retry-after-ms': '250', 'retry-after': '1' }) }, nowIso)).toBe(250);
    expect(retryAfterFromError({ headers: new Headers({ 'retry-after-ms': 'soon', 'retry-after': '1' }) }, nowIso)).toBe(1000);
  });

  it("takes a ToolError's declared retryAfterMs, capped like the header", () => {
    expect(retryAfterFromError(new ToolError('rate-limited', 'slow down', { retryAfterMs: 1500 }), nowIso)).toBe(1500);
    expect(retryAfterFromError(new ToolError('rate-limited', 'slow down', { retryAfterMs: 1e12 }), nowIso)).toBe(maxRetryAfterMs);
  });

  it('looks through causes, as a tool that wraps the client error reports it', () => {
    const httpFailure = Object.assign(new Error('HTTP 503'), { headers: new Headers({ 'retry-after': '6' }) });
    const wrapped = new Error('payment failed', { cause: new Error('request failed', { cause: httpFailure }) });
    expect(retryAfterFromError(wrapped, nowIso)).toBe(6000);
  });

  it('answers undefined when there is nothing to read', () => {
    expect(retryAfterFromError(new Error('plain'), nowIso)).toBeUndefined();
    expect(retryAfterFromError({ headers: new Headers() }, nowIso)).toBeUndefined();
    expect(retryAfterFromError({ headers: { 'retry-after': 'whenever' } }, nowIso)).toBeUndefined();
    expect(retryAfterFromError('a string', nowIso)).toBeUndefined();
    expect(retryAfterFromError(null, nowIso)).toBeUndefined();
    const loop: { cause?: unknown } = {};
    loop.cause = loop;
    expect(retryAfterFromError(loop, nowIso)).toBeUndefined();
  });
});
