// Tool errors and their classes. What the runner does next depends only on the class: retry,
// wait, refresh credentials, hand the error back to the decider, or fail the workflow.

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

const retryableStatuses = new Set([408, 425, 500, 502, 503, 504]);
const transientNetworkCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Maps what a tool threw to an error class. ToolErrors carry their own class. */
export function classifyError(error: unknown): ErrorClass {
  if (ToolError.isInstance(error)) return error.errorClass;
  const status = httpStatusOf(error);
  if (status !== undefined) {
    if (status === 429) return 'rate-limited';
    if (status === 401) return 'auth-expired';
    if (status === 403) return 'permission-denied';
    if (retryableStatuses.has(status) || status >= 500) return 'transient';
    if (status >= 400) return 'invalid-input';
  }
  const name = (error as { name?: string })?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'transient';
  for (let current: unknown = error, depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && transientNetworkCodes.has(code)) return 'transient';
    current = (current as { cause?: unknown }).cause;
  }
  if (error instanceof TypeError && /fetch failed/i.test(error.message)) return 'transient';
  return 'fatal';
}

function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  for (const field of ['status', 'statusCode']) {
    const value = (error as Record<string, unknown>)[field];
    if (typeof value === 'number' && value >= 100 && value < 600) return value;
  }
  const response = (error as { response?: { status?: unknown } }).response;
  if (typeof response?.status === 'number') return response.status;
  return undefined;
}

export function isRetryable(errorClass: ErrorClass): boolean {
  return errorClass === 'transient' || errorClass === 'rate-limited' || errorClass === 'auth-expired';
}
