// Retry-After: how long a service asked us to wait, read from the header (RFC 9110 §10.2.3) on
// whatever a client library threw. Pure functions over a given `now`, so a parked workflow can
// turn the answer into a durable wake-up time. Never throws: a header we cannot read is ignored.

/**
 * The longest wait Keel accepts from a service. A misconfigured or hostile server (or an RFC 850
 * date whose two-digit year lands in the wrong century) could otherwise park a workflow for
 * years; a day covers every real rate-limit window, including daily quotas. It also keeps the
 * value far below setTimeout's limit (2^31-1 ms, about 24.8 days), past which Node fires the
 * timer after 1 ms — a huge Retry-After would otherwise turn into hammering the service.
 */
export const maxRetryAfterMs = 24 * 60 * 60 * 1000;

const deltaSeconds = /^\d+(\.\d+)?$/;
const day = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const longDay = '(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const month = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const time = '\\d{2}:\\d{2}:\\d{2}';
// Date.parse alone is far too lenient ("foo 1" parses as 2001-01-01), so a value must have the
// shape of one of the three HTTP-date forms before Date.parse reads it.
const imfFixdate = new RegExp(`^${day}, \\d{2} ${month} \\d{4} ${time} GMT$`, 'i');
const rfc850Date = new RegExp(`^${longDay}, \\d{2}-${month}-\\d{2} ${time} GMT$`, 'i');
const asctimeDate = new RegExp(`^${day} ${month} ( \\d|\\d{2}) ${time} \\d{4}$`, 'i');

/**
 * Milliseconds to wait according to a Retry-After value: delta-seconds ("120", decimals
 * tolerated) or an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms). A date in
 * the past means 0; anything unreadable means undefined; waits are capped at `maxRetryAfterMs`.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (deltaSeconds.test(text)) return capped(Math.ceil(Number(text) * 1000));
  const date = parseHttpDate(text);
  if (date === undefined) return undefined;
  return capped(Math.max(0, date - now));
}

function parseHttpDate(text: string): number | undefined {
  let parsed: number;
  if (imfFixdate.test(text) || rfc850Date.test(text)) parsed = Date.parse(text);
  // asctime carries no zone; HTTP dates are always UTC, and Date.parse would read local time.
  else if (asctimeDate.test(text)) parsed = Date.parse(`${text} GMT`);
  else return undefined;
  return Number.isFinite(parsed) ? parsed : undefined;
}

function capped(ms: number): number {
  return Math.min(ms, maxRetryAfterMs);
}

/** Header containers as client libraries expose them: a fetch Headers, or a plain record. */
type HeaderSource = { get(name: string): string | null } | Record<string, unknown>;

/**
 * The Retry-After a failure carries, in ms from `now`. Looks through the error and its causes at
 * what real clients throw: a Keel ToolError's `retryAfterMs`; a fetch Response thrown as is; an
 * error with `response.headers` (fetch Response, axios, got); the AI SDK's APICallError
 * (`responseHeaders`); an error with `headers` (OpenAI and Anthropic SDKs, undici). The
 * non-standard `retry-after-ms` header (sent by OpenAI and Azure) is read when present.
 */
export function retryAfterFromError(error: unknown, now: number): number | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const found = retryAfterOf(current as Record<string, unknown>, now);
    if (found !== undefined) return found;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function retryAfterOf(failure: Record<string, unknown>, now: number): number | undefined {
  const declared = failure.retryAfterMs;
  if (typeof declared === 'number' && Number.isFinite(declared) && declared >= 0) return capped(declared);
  const response = failure.response as Record<string, unknown> | undefined;
  for (const headers of [failure.headers, failure.responseHeaders, response?.headers]) {
    if (typeof headers !== 'object' || headers === null) continue;
    const found = retryAfterFromHeaders(headers as HeaderSource, now);
    if (found !== undefined) return found;
  }
  return undefined;
}

function retryAfterFromHeaders(headers: HeaderSource, now: number): number | undefined {
  const milliseconds = headerValue(headers, 'retry-after-ms');
  if (milliseconds !== undefined && deltaSeconds.test(milliseconds.trim())) return capped(Math.ceil(Number(milliseconds)));
  return parseRetryAfter(headerValue(headers, 'retry-after'), now);
}

function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers.get === 'function') {
    const value = (headers as { get(name: string): unknown }).get(name);
    return typeof value === 'string' ? value : undefined;
  }
  // Plain records: Node lower-cases incoming names, but hand-built ones may not.
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') return first;
    if (typeof first === 'number') return String(first);
  }
  return undefined;
}
