// Redaction of secrets before a value reaches the journal, the audit, logs or an error message.
// Two rules: a value under a sensitive key (authorization, token, password, ...) is replaced
// whole, and any known secret string (a live token, an API key) is replaced wherever it appears
// inside a string. Always works on a copy: the caller's value is never changed.

export const redactedText = '[REDACTED]';

/** Key names whose values are never kept, compared case-insensitively and ignoring '-' and '_'. */
export const defaultSensitiveKeys: readonly string[] = [
  'authorization',
  'token',
  'access_token',
  'refresh_token',
  'api_key',
  'apikey',
  'password',
  'secret',
  'cookie',
  'set-cookie',
  'x-api-key',
];

/**
 * Known secrets shorter than this are not replaced inside strings. A short secret (a 4-digit PIN,
 * a 6-character test key) occurs by chance in amounts, ids and timestamps; replacing every
 * occurrence would corrupt the audit and logs with false positives, and the pattern of what was
 * replaced would itself hint at the secret. Values under sensitive keys are still replaced.
 */
export const minSecretLength = 8;

export interface RedactorOptions {
  /** The secrets to look for, asked afresh on every call so rotated tokens are covered. */
  secrets?: () => Iterable<string>;
  /** Replaces the default key list (add to `defaultSensitiveKeys` to extend it). */
  sensitiveKeys?: readonly string[];
}

export interface Redactor {
  /** A deep copy of `value` with sensitive keys and known secrets replaced by '[REDACTED]'. */
  redact(value: unknown): unknown;
  /** `text` with every known secret replaced by '[REDACTED]'. */
  redactText(text: string): string;
}

export function createRedactor(options: RedactorOptions = {}): Redactor {
  const sensitive = new Set((options.sensitiveKeys ?? defaultSensitiveKeys).map(normaliseKey));
  const isSensitive = (key: string) => sensitive.has(normaliseKey(key));
  const secretPattern = () => patternFor(options.secrets?.() ?? []);
  return {
    redact(value) {
      const pattern = secretPattern();
      return copy(value, { isSensitive, text: (text) => replaceSecrets(text, pattern), ancestors: new Set() });
    },
    redactText(text) {
      return replaceSecrets(text, secretPattern());
    },
  };
}

// "accessToken", "Access-Token" and "ACCESS_TOKEN" all name the same thing.
function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

function patternFor(secrets: Iterable<string>): RegExp | undefined {
  const usable = [...new Set(secrets)].filter((secret) => typeof secret === 'string' && secret.length >= minSecretLength);
  if (usable.length === 0) return undefined;
  // Longest first, so a secret that contains another is replaced whole.
  usable.sort((a, b) => b.length - a.length);
  return new RegExp(usable.map(escapeRegExp).join('|'), 'g');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function replaceSecrets(text: string, pattern: RegExp | undefined): string {
  return pattern ? text.replace(pattern, redactedText) : text;
}

interface CopyContext {
  isSensitive(key: string): boolean;
  text(text: string): string;
  /** The objects on the path from the root: a reference back to one of them is a cycle. */
  ancestors: Set<object>;
}

function copy(value: unknown, context: CopyContext): unknown {
  if (typeof value === 'string') return context.text(value);
  if (typeof value !== 'object' || value === null) return value;
  if (context.ancestors.has(value)) return '[Circular]';
  if (value instanceof Date) return new Date(value.getTime());
  if (ArrayBuffer.isView(value)) return (value as unknown as { slice(): unknown }).slice();
  context.ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => copy(item, context));
    if (value instanceof Map) {
      return new Map([...value].map(([key, item]) => [key, typeof key === 'string' ? field(key, item, context) : copy(item, context)]));
    }
    if (value instanceof Set) return new Set([...value].map((item) => copy(item, context)));
    if (value instanceof Error) return errorCopy(value, context);
    // URL, and other objects that say how they serialise: redact what would be written.
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return copy(toJSON.call(value), context);
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) result[key] = field(key, item, context);
    return result;
  } finally {
    context.ancestors.delete(value);
  }
}

function field(key: string, value: unknown, context: CopyContext): unknown {
  // null and undefined stay: "no token was sent" is worth seeing and reveals nothing.
  if (context.isSensitive(key) && value !== null && value !== undefined) return redactedText;
  return copy(value, context);
}

// Errors become plain objects: name, message and stack are not enumerable and would be lost,
// and a message is where a secret most often hides (a URL with a key, an echoed header).
function errorCopy(error: Error, context: CopyContext): Record<string, unknown> {
  const result: Record<string, unknown> = { name: error.name, message: context.text(error.message) };
  if (error.stack !== undefined) result.stack = context.text(error.stack);
  for (const [key, item] of Object.entries(error)) result[key] = field(key, item, context);
  if (error.cause !== undefined) result.cause = copy(error.cause, context);
  return result;
}
