// The canonical JSON of the audit log ("keel-audit-v1"): one byte string per JSON value, so a
// hash computed here can be recomputed anywhere. It is RFC 8785 (JSON Canonicalization Scheme)
// for the JSON data model: object keys sorted by UTF-16 code units, no whitespace, strings
// escaped as JSON.stringify escapes them, numbers written as ECMAScript writes them (which is
// what RFC 8785 prescribes), UTF-8 bytes when hashed. Like JSON.stringify, it drops undefined
// object members, writes undefined array items as null, and uses toJSON() (dates become ISO
// strings). Unlike it, a non-finite number or a bigint is refused: a hash over a value that
// JSON cannot carry could never be checked by anyone else.
//
// Never imports from the rest of Keel: the audit log is a leaf everyone may call.

export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
}

export interface CanonicalJsonOptions {
  /**
   * 'refuse' (the default) throws on NaN and ±Infinity; 'null' writes them as null, as
   * JSON.stringify does, for data copied from places that already accept them (the journal).
   */
  nonFinite?: 'refuse' | 'null';
}

export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  const text = write(value, options.nonFinite === 'null', '$');
  // Only a bare undefined, function or symbol has no JSON form; inside containers they are dropped.
  if (text === undefined) throw new CanonicalJsonError('There is no JSON for a bare undefined, function or symbol value.');
  return text;
}

function write(value: unknown, nonFiniteAsNull: boolean, path: string): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (Number.isFinite(value)) return JSON.stringify(value);
      if (nonFiniteAsNull) return 'null';
      throw new CanonicalJsonError(`The number ${value} at ${path} has no JSON form; canonical JSON refuses it instead of writing null.`);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new CanonicalJsonError(`The bigint at ${path} has no JSON number form; convert it to a string first.`);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return write(toJSON.call(value), nonFiniteAsNull, path);
  if (Array.isArray(value)) {
    return `[${value.map((item, index) => write(item, nonFiniteAsNull, `${path}[${index}]`) ?? 'null').join(',')}]`;
  }
  // Array.prototype.sort compares UTF-16 code units: the key order RFC 8785 asks for.
  const keys = Object.keys(value as object).sort();
  let text = '';
  for (const key of keys) {
    const item = write((value as Record<string, unknown>)[key], nonFiniteAsNull, `${path}.${key}`);
    if (item === undefined) continue;
    text += `${text ? ',' : ''}${JSON.stringify(key)}:${item}`;
  }
  return `{${text}}`;
}
