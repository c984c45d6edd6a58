// Tool errors and their classes. What the runner does next depends only on the class: retry,
// wait, refresh credentials, hand the error back to the decider, or fail the workflow.
// docs/errors.md holds the table of what maps to which class.

import { retryAfterFromError } from './retry-after.js';

export const ErrorClass = {
  /** A passing fault (5xx, reset connection, timeout): retry with backoff. */
  transient: 'transient',
  /** The service asked us to slow down: retry after its delay. */
  rateLimited: 'rate-limited',
  /** Credentials expired: refresh, then retry once. */
  authExpired: 'auth-expired',
  /** The arguments are wrong: never retry the same arguments; the decider sees the error. */
  invalidInput: 'invalid-input',
  /** Not allowed: the decider sees the error. */
  permissionDenied: 'permission-denied',
  /** Cannot be recovered here: the workflow fails and its state is saved for review. */
  fatal: 'fatal',
} as const;
export type ErrorClass = (typeof ErrorClass)[keyof typeof ErrorClass];

const marker = Symbol.for('keel.tool-error');

export class ToolError extends Error {
  readonly [marker] = true;
  readonly errorClass: ErrorClass;
  /** For rate-limited errors: how long the service asked us to wait. */
  readonly retryAfterMs?: number;
  readonly details?: unknown;

  constructor(errorClass: ErrorClass, message: string, options: { cause?: unknown; retryAfterMs?: number; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ToolError';
    this.errorClass = errorClass;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  static isInstance(error: unknown): error is ToolError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }
}

/** What the classifier found: the class, and the facts the runner and the journal use. */
export interface FailureClassification {
  errorClass: ErrorClass;
  /** How long the service asked us to wait (Retry-After), in ms from `now`. */
  retryAfterMs?: number;
  /** The HTTP status the failure (or one of its causes) carried. */
  status?: number;
  /** The first string error code in the failure or its causes: ECONNRESET, UND_ERR_SOCKET, ERR_... */
  code?: string;
  /** What decided the class, for the journal and messages: "HTTP 503", "code ECONNRESET", ... */
  reason: string;
}

/** The part of a tool the classifier consults: its name and its own classifier, if any. */
export interface ClassifyingTool {
  name: string;
  classify?: (error: unknown) => ErrorClass | undefined;
}

type Verdict = { errorClass: ErrorClass; reason: string };

// Network faults that a later attempt can outlive: Node system errors, undici's (fetch), and the
// Node ERR_ codes of a dropped connection.
const transientCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_BPL_MISSING_UPSTREAM',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_SOCKET_CLOSED',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_STREAM_CANCEL',
]);
// Aborts: an attempt cut short (by its timeout or the tool's own signal) may succeed next time.
// A cancel of the whole workflow arrives the same way, so the runner checks its own signal
// before it classifies; the classifier cannot tell the two apart from the error alone.
const abortCodes = new Set(['ABORT_ERR', 'UND_ERR_ABORT', 'UND_ERR_ABORTED']);
const transientNames = new Set([
  // DOMException names: AbortSignal.timeout() rejects with TimeoutError, abort() with AbortError.
  'TimeoutError',
  'AbortError',
  // OpenAI and Anthropic SDKs: connection failures carry no status or code of their own.
  'APIConnectionError',
  'APIConnectionTimeoutError',
  'APIUserAbortError',
]);
const apiCallErrorMarker = Symbol.for('vercel.ai.error.AI_APICallError');

/**
 * Maps a failure to an error class and the facts around it. Order: the tool's own `classify`
 * (undefined means "use the default"); then the failure and its causes, outermost first, where
 * the first that says something decides — a ToolError's declared class, an HTTP status, an AI SDK
 * APICallError's isRetryable, a known error name, a known error code; then fetch's bare
 * "fetch failed" (transient); anything else is fatal.
 */
export function classifyFailure(error: unknown, tool?: ClassifyingTool, now: number = Date.now()): FailureClassification {
  const chain = causeChain(error);
  const override = toolVerdict(error, tool);
  const verdict = override.verdict ?? defaultVerdict(chain);
  const reason = override.note ? `${verdict.reason}; ${override.note}` : verdict.reason;
  const classification: FailureClassification = { errorClass: verdict.errorClass, reason };
  const retryAfterMs = retryAfterFromError(error, now);
  if (retryAfterMs !== undefined) classification.retryAfterMs = retryAfterMs;
  const status = firstDefined(chain, httpStatusOf);
  if (status !== undefined) classification.status = status;
  const code = firstDefined(chain, codeOf);
  if (code !== undefined) classification.code = code;
  return classification;
}

/** The error class alone; see classifyFailure. */
export function classifyError(error: unknown, tool?: ClassifyingTool): ErrorClass {
  return classifyFailure(error, tool).errorClass;
}

/** The class an HTTP error status stands for; undefined for statuses below 400. */
export function classForStatus(status: number): ErrorClass | undefined {
  if (status === 429) return 'rate-limited';
  if (status === 401) return 'auth-expired';
  if (status === 403) return 'permission-denied';
  // Proxy authentication is deployment configuration: neither a retry nor the model can fix it.
  if (status === 407) return 'fatal';
  if (status === 408 || status === 425 || status >= 500) return 'transient';
  if (status >= 400) return 'invalid-input';
  return undefined;
}

const errorClasses = new Set<string>(Object.values(ErrorClass));

/** The tool's own verdict, or a note saying why its classifier was not used. */
function toolVerdict(error: unknown, tool: ClassifyingTool | undefined): { verdict?: Verdict; note?: string } {
  if (!tool?.classify) return {};
  let chosen: unknown;
  try {
    chosen = tool.classify(error);
  } catch (failure) {
    // A classifier that misbehaves must not hide the failure it was asked about: fall back, say so.
    return { note: `tool '${tool.name}' classify() threw (${failure instanceof Error ? failure.message : String(failure)}), default used` };
  }
  if (chosen === undefined) return {};
  if (typeof chosen !== 'string' || !errorClasses.has(chosen)) {
    return { note: `tool '${tool.name}' classify() returned '${String(chosen)}', not an error class, default used` };
  }
  return { verdict: { errorClass: chosen as ErrorClass, reason: `tool '${tool.name}' classify()` } };
}

function defaultVerdict(chain: object[]): Verdict {
  for (const link of chain) {
    const verdict = linkVerdict(link);
    if (verdict) return verdict;
  }
  return fetchFailedVerdict(chain) ?? { errorClass: 'fatal', reason: 'unrecognised error' };
}

function linkVerdict(link: object): Verdict | undefined {
  if (ToolError.isInstance(link)) return { errorClass: link.errorClass, reason: `ToolError (${link.errorClass})` };
  const status = httpStatusOf(link);
  const byStatus = status === undefined ? undefined : classForStatus(status);
  if (byStatus) return { errorClass: byStatus, reason: `HTTP ${status}` };
  if ((link as Record<symbol, unknown>)[apiCallErrorMarker] === true && (link as { isRetryable?: unknown }).isRetryable === true) {
    return { errorClass: 'transient', reason: 'AI SDK APICallError (retryable, no status)' };
  }
  const name = (link as { name?: unknown }).name;
  if (typeof name === 'string' && transientNames.has(name)) return { errorClass: 'transient', reason: name };
  const code = codeOf(link);
  if (code === undefined) return undefined;
  if (transientCodes.has(code) || abortCodes.has(code)) return { errorClass: 'transient', reason: `code ${code}` };
  // Other Node (ERR_*) and undici (UND_ERR_*) codes are programming or configuration errors, as
  // are certificate failures: retrying the same request cannot fix them.
  if (/^(ERR_|UND_ERR_)/.test(code) || code.includes('CERT')) return { errorClass: 'fatal', reason: `code ${code}` };
  return undefined;
}

// fetch reports every network failure as TypeError('fetch failed') with the reason in `cause`;
// when the cause said nothing we recognise, the failure is still a network one.
function fetchFailedVerdict(chain: object[]): Verdict | undefined {
  const fetchFailed = chain.some((link) => link instanceof TypeError && /fetch failed/i.test(link.message));
  return fetchFailed ? { errorClass: 'transient', reason: 'fetch failed' } : undefined;
}

function causeChain(error: unknown): object[] {
  const chain: object[] = [];
  for (let current = error; typeof current === 'object' && current !== null && chain.length < 5; current = (current as { cause?: unknown }).cause) {
    if (chain.includes(current)) break;
    chain.push(current);
  }
  return chain;
}

function firstDefined<T>(chain: object[], read: (link: object) => T | undefined): T | undefined {
  for (const link of chain) {
    const value = read(link);
    if (value !== undefined) return value;
  }
  return undefined;
}

function httpStatusOf(link: object): number | undefined {
  const response = (link as { response?: Record<string, unknown> }).response;
  for (const value of [(link as Record<string, unknown>).status, (link as Record<string, unknown>).statusCode, response?.status, response?.statusCode]) {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 100 && value < 600) return value;
  }
  return undefined;
}

function codeOf(link: object): string | undefined {
  const code = (link as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

export function isRetryable(errorClass: ErrorClass): boolean {
  return errorClass === 'transient' || errorClass === 'rate-limited' || errorClass === 'auth-expired';
}
