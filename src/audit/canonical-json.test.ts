// The canonical JSON of the audit log: RFC 8785's rules for key order, numbers and strings
// (checked against the RFC's own examples), JSON.stringify's handling of undefined and toJSON,
// and refusal of what JSON cannot carry.

import { describe, expect, it } from 'vitest';
import { canonicalJson, CanonicalJsonError } from './canonical-json.js';

describe('canonicalJson', () => {
  it('writes no whitespace and sorts object keys at every depth', () => {
    expect(canonicalJson({ b: [3, { z: 1, a: 2 }], a: 'x', c: { y: null, x: true } })).toBe('{"a":"x","b":[3,{"a":2,"z":1}],"c":{"x":true,"y":null}}');
  });

  it('sorts keys by UTF-16 code units, as RFC 8785 section 3.2.3 does', () => {
    const value = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    // Read the order from the text: a parsed object would list the integer-like key '1' first.
    const keys = [...canonicalJson(value).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((match) => JSON.parse(`"${match[1]}"`));
    expect(keys).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  it('writes numbers as RFC 8785 (ECMAScript) does', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [-0, '0'],
      [1e30, '1e+30'],
      [4.5, '4.5'],
      [0.002, '0.002'],
      [1e-7, '1e-7'],
      [0.000001, '0.000001'],
      [333333333.33333329, '333333333.3333333'],
      [1e21, '1e+21'],
      [1e20, '100000000000000000000'],
      [-1.5e-10, '-1.5e-10'],
      [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    ];
    for (const [number, text] of cases) expect(canonicalJson(number)).toBe(text);
  });

  it('escapes strings as RFC 8785 does and keeps other characters as they are', () => {
    // The string example of RFC 8785 section 3.2.2.2.
    expect(canonicalJson('\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/')).toBe('"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"');
    expect(canonicalJson('tab\there\u0008\u000c\r')).toBe('"tab\\there\\b\\f\\r"');
  });

  it('drops undefined members, writes undefined array items as null, and uses toJSON', () => {
    expect(canonicalJson({ a: undefined, b: 1, f: () => 1 })).toBe('{"b":1}');
    expect(canonicalJson([undefined, 1])).toBe('[null,1]');
    expect(canonicalJson({ at: new Date(Date.UTC(2026, 0, 31, 12)) })).toBe('{"at":"2026-01-31T12:00:00.000Z"}');
  });

  it('is stable through a JSON round trip: parsing its output and writing it again gives the same bytes', () => {
    const value = { reasoning: 'Zahlung über 120 € — ok 👍', confidence: 0.9, durationMs: 0.000012345, args: { amount: 120.5, to: 'DE89 3704' }, nested: [[], {}, ''] };
    const text = canonicalJson(value);
    expect(canonicalJson(JSON.parse(text))).toBe(text);
  });

  it('refuses NaN, Infinity and bigint, naming where they are', () => {
    expect(() => canonicalJson({ a: [1, Number.NaN] })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: [1, Number.NaN] })).toThrow('$.a[1]');
    expect(() => canonicalJson({ big: 10n })).toThrow('$.big');
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow('has no JSON form');
    expect(() => canonicalJson(undefined)).toThrow(CanonicalJsonError);
  });

  it("writes non-finite numbers as null when asked to, as JSON.stringify does", () => {
    expect(canonicalJson({ a: Number.NaN, b: [Number.NEGATIVE_INFINITY] }, { nonFinite: 'null' })).toBe('{"a":null,"b":[null]}');
  });
});
