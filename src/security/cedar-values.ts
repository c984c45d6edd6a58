// A tool call's arguments as Cedar values, for operator policies to test (`context.args.amount`).
// Cedar has no floating-point numbers, so every number becomes a Cedar decimal (up to four
// places), whatever it looks like: policies compare amounts with decimal methods, as in
// `context.args.amount.greaterThan(decimal("1000.0"))` (`>` is for Cedar's integers only). A number
// with more places is rounded away from zero, so a limit can never be passed by a fraction; one
// Cedar cannot hold at all makes the call unauthorisable (denied).

import type { CedarValueJson } from './cedar.js';

/** The largest magnitude a Cedar decimal holds (its range is ±922337203685477.5807). */
const decimalLimit = 922_337_203_685_477;

export class CedarValueError extends Error {}

/** `value` as a Cedar value; null and undefined members are left out. Throws CedarValueError for what Cedar cannot hold. */
export function toCedarValue(value: unknown, path = 'args'): CedarValueJson | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return { __extn: { fn: 'decimal', arg: decimalText(value, path) } };
  if (Array.isArray(value)) {
    return value.map((item, index) => toCedarValue(item, `${path}[${index}]`)).filter((item): item is CedarValueJson => item !== undefined);
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const record: Record<string, CedarValueJson> = {};
    for (const [key, item] of Object.entries(value)) {
      const converted = toCedarValue(item, `${path}.${key}`);
      if (converted !== undefined) record[key] = converted;
    }
    return record;
  }
  throw new CedarValueError(`${path} is a ${typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value}, which a policy cannot test`);
}

export function decimalText(value: number, path = 'value'): string {
  if (!Number.isFinite(value) || Math.abs(value) > decimalLimit) {
    throw new CedarValueError(`${path} is ${value}, outside the range of a Cedar decimal (±${decimalLimit})`);
  }
  const sign = value < 0 ? '-' : '';
  const text = String(Math.abs(value));
  // Only magnitudes below 1e-6 print with an exponent here: the nearest decimal away from zero.
  if (text.includes('e')) return `${sign}0.0001`;
  const [whole, fraction = ''] = text.split('.') as [string, string?];
  if (fraction.length <= 4) return `${sign}${whole}.${fraction || '0'}`;
  const scaled = (BigInt(whole + fraction.slice(0, 4)) + 1n).toString().padStart(5, '0');
  return `${sign}${scaled.slice(0, -4)}.${scaled.slice(-4)}`;
}
