// createRedactor: values under sensitive keys and known secrets inside strings never survive;
// everything else does, untouched, in a copy.

import { describe, expect, it } from 'vitest';
import { createRedactor, defaultSensitiveKeys, minSecretLength } from './redact.js';

const token = 'tok_live_8f2c91d7e4';

describe('redact: sensitive keys', () => {
  const { redact } = createRedactor();

  it.each(defaultSensitiveKeys)('replaces the value under %s', (key) => {
    expect(redact({ [key]: 'value', other: 'kept' })).toEqual({ [key]: '[REDACTED]', other: 'kept' });
  });

  it('matches keys whatever their case or separators', () => {
    const headers = { Authorization: 'Bearer abc', 'X-API-Key': 'k', 'Set-Cookie': ['a=1', 'b=2'], accessToken: 'a', REFRESH_TOKEN: 'r', apiKey: 'k2' };
    expect(redact(headers)).toEqual({
      Authorization: '[REDACTED]',
      'X-API-Key': '[REDACTED]',
      'Set-Cookie': '[REDACTED]',
      accessToken: '[REDACTED]',
      REFRESH_TOKEN: '[REDACTED]',
      apiKey: '[REDACTED]',
    });
  });

  it('matches whole key names only', () => {
    const usage = { tokens: 1200, tokenCount: 3, idempotencyKey: 'wf_1:3', passwordPolicy: 'strong' };
    expect(redact(usage)).toEqual(usage);
  });

  it('replaces a whole object under a sensitive key, at any depth, and keeps null and undefined', () => {
    const request = { body: { claim: 'c-1' }, headers: [{ cookie: { session: 's' } }], auth: { password: 'hunter22', token: null, secret: undefined } };
    expect(redact(request)).toEqual({
      body: { claim: 'c-1' },
      headers: [{ cookie: '[REDACTED]' }],
      auth: { password: '[REDACTED]', token: null, secret: undefined },
    });
  });

  it('takes a list of its own instead of the default', () => {
    const { redact: custom } = createRedactor({ sensitiveKeys: ['iban'] });
    expect(custom({ IBAN: 'DE89 3704', password: 'kept now' })).toEqual({ IBAN: '[REDACTED]', password: 'kept now' });
  });
});

describe('redact: known secrets inside strings', () => {
  const { redact, redactText } = createRedactor({ secrets: () => [token] });

  it('replaces every occurrence in any string, under any key', () => {
    const entry = { message: `GET /pay?key=${token} failed; retried with ${token}`, args: ['x', `Bearer ${token}`] };
    expect(redact(entry)).toEqual({ message: 'GET /pay?key=[REDACTED] failed; retried with [REDACTED]', args: ['x', 'Bearer [REDACTED]'] });
    expect(redactText(`token=${token}`)).toBe('token=[REDACTED]');
  });

  it('asks for the secrets on every call, so a rotated token is covered', () => {
    let current = 'first-token-1234';
    const rotating = createRedactor({ secrets: () => [current] });
    expect(rotating.redactText('first-token-1234')).toBe('[REDACTED]');
    current = 'second-token-5678';
    expect(rotating.redactText('first-token-1234 second-token-5678')).toBe('first-token-1234 [REDACTED]');
  });

  it('treats secrets as text, not patterns, and replaces the longest first', () => {
    const tricky = createRedactor({ secrets: () => ['a.b*c+d?e(f)', 'sk_live_12345678', 'sk_live_12345678_extended'] });
    expect(tricky.redactText('x a.b*c+d?e(f) aXbbbc sk_live_12345678_extended')).toBe('x [REDACTED] aXbbbc [REDACTED]');
  });

  it(`leaves secrets shorter than ${minSecretLength} characters in strings, but still redacts their keys`, () => {
    const pin = createRedactor({ secrets: () => ['1234', ''] });
    expect(pin.redact({ amount: 'EUR 1234.00', password: '1234' })).toEqual({ amount: 'EUR 1234.00', password: '[REDACTED]' });
    expect(pin.redactText('1234')).toBe('1234');
  });

  it('redacts Error messages, stacks, fields and causes, returning plain objects', () => {
    const cause = Object.assign(new Error(`401 for ${token}`), { code: 'E_AUTH', authorization: `Bearer ${token}` });
    const error = new Error(`call with ${token} failed`, { cause });
    const copied = redact(error) as Record<string, unknown>;
    expect(copied).toMatchObject({
      name: 'Error',
      message: 'call with [REDACTED] failed',
      cause: { name: 'Error', message: '401 for [REDACTED]', code: 'E_AUTH', authorization: '[REDACTED]' },
    });
    expect(JSON.stringify(copied)).not.toContain(token);
  });

  it('redacts inside Maps, Sets and what toJSON writes (a URL with a key in it)', () => {
    const value = {
      map: new Map<unknown, unknown>([['token', 'x'], ['note', `see ${token}`], [1, token]]),
      set: new Set([token, 'plain']),
      url: new URL(`https://api.example.test/v1?key=${token}`),
    };
    expect(redact(value)).toEqual({
      map: new Map<unknown, unknown>([['token', '[REDACTED]'], ['note', 'see [REDACTED]'], [1, '[REDACTED]']]),
      set: new Set(['[REDACTED]', 'plain']),
      url: 'https://api.example.test/v1?key=[REDACTED]',
    });
  });
});

describe('redact: a copy, never the original', () => {
  const { redact } = createRedactor({ secrets: () => [token] });

  it('leaves the input untouched and shares no objects with it', () => {
    const input = { headers: { authorization: `Bearer ${token}` }, items: [{ note: token }], when: new Date(0) };
    const snapshot = structuredClone(input);
    const output = redact(input) as typeof input;
    expect(input).toEqual(snapshot);
    expect(output.items).not.toBe(input.items);
    expect(output.when).toEqual(new Date(0));
    expect(output.when).not.toBe(input.when);
  });

  it('keeps numbers, booleans, null and undefined as they are', () => {
    expect(redact({ n: 12_345_678, b: false, z: null, u: undefined })).toEqual({ n: 12_345_678, b: false, z: null, u: undefined });
    expect(redact(42)).toBe(42);
    expect(redact(token)).toBe('[REDACTED]');
  });

  it('marks cycles instead of recursing forever, and copies shared references twice', () => {
    const shared = { note: 'shared' };
    const looped: Record<string, unknown> = { a: shared, b: shared };
    looped.self = looped;
    expect(redact(looped)).toEqual({ a: { note: 'shared' }, b: { note: 'shared' }, self: '[Circular]' });
  });
});
