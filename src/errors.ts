// KeelError: the one error type Keel throws. Every error a person can meet says what happened,
// which workflow/step/tool it concerns, and what to do next. Recognised across package copies by
// a Symbol.for marker rather than instanceof.

const marker = Symbol.for('keel.error');

/** Who is at fault decides who must act: the caller, the system, or the model. */
export const ErrorSource = {
  user: 'user',
  system: 'system',
  model: 'model',
} as const;
export type ErrorSource = (typeof ErrorSource)[keyof typeof ErrorSource];

export const ErrorCode = {
  BAD_INPUT: { source: 'user', exitCode: 2 },
  UNKNOWN_AGENT: { source: 'user', exitCode: 2 },
  UNKNOWN_WORKFLOW: { source: 'user', exitCode: 2 },
  INVALID_DEFINITION: { source: 'user', exitCode: 2 },
  ILLEGAL_TRANSITION: { source: 'user', exitCode: 1 },
  VERSION_MISMATCH: { source: 'user', exitCode: 2 },
  WORKFLOW_NOT_RESUMABLE: { source: 'user', exitCode: 2 },
  CONTEXT_TOO_LARGE: { source: 'user', exitCode: 1 },
  MAX_STEPS_EXCEEDED: { source: 'model', exitCode: 1 },
  MODEL_ERROR: { source: 'system', exitCode: 1 },
  MODEL_CONFIG: { source: 'user', exitCode: 2 },
  TOOL_FAILED: { source: 'system', exitCode: 1 },
  LEASE_LOST: { source: 'system', exitCode: 1 },
  STORE_UNAVAILABLE: { source: 'system', exitCode: 2 },
  STORE_CORRUPT: { source: 'system', exitCode: 2 },
  STORE_TOO_NEW: { source: 'user', exitCode: 2 },
  /** A tool call the principal's grants do not cover, for an agent that fails on a denial (onPermissionDenied: 'fail'). */
  PERMISSION_DENIED: { source: 'user', exitCode: 1 },
  UNKNOWN_GRANT: { source: 'user', exitCode: 2 },
  /** An operator policy (KEEL_POLICIES, createKeel({ security: { policies } })) that Keel cannot use. */
  INVALID_POLICY: { source: 'user', exitCode: 2 },
  /** Human in the loop (src/approval): no approval request has that id. */
  UNKNOWN_APPROVAL: { source: 'user', exitCode: 2 },
  /** The approval request was already approved, rejected or expired: a decision applies once. */
  APPROVAL_DECIDED: { source: 'user', exitCode: 2 },
  /** The principal an agent acts for tried to approve their own request. */
  SELF_APPROVAL: { source: 'user', exitCode: 2 },
  /** Whoever decides an approval request must be a principal holding the group or role it names. */
  NOT_APPROVER: { source: 'user', exitCode: 2 },
  /** The cost circuit breaker (src/cost/cost-breaker.ts) is open: no new workflow starts. */
  COST_BREAKER_OPEN: { source: 'system', exitCode: 1 },
} as const satisfies Record<string, { source: ErrorSource; exitCode: number }>;
export type ErrorCode = keyof typeof ErrorCode;

export interface ErrorSubject {
  workflowId?: string;
  step?: number;
  tool?: string;
  agent?: string;
}

export interface KeelErrorOptions extends ErrorSubject {
  cause?: unknown;
  retryable?: boolean;
}

export class KeelError extends Error {
  readonly [marker] = true;
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  readonly retryable: boolean;
  readonly workflowId?: string;
  readonly step?: number;
  readonly tool?: string;
  readonly agent?: string;

  constructor(code: ErrorCode, message: string, options: KeelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeelError';
    this.code = code;
    this.source = ErrorCode[code].source;
    this.retryable = options.retryable ?? false;
    this.workflowId = options.workflowId;
    this.step = options.step;
    this.tool = options.tool;
    this.agent = options.agent;
  }

  get exitCode(): number {
    return ErrorCode[this.code].exitCode;
  }

  static isInstance(error: unknown): error is KeelError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }

  toJSON() {
    return {
      name: this.name,
      code: this.code,
      source: this.source,
      message: this.message,
      retryable: this.retryable,
      workflowId: this.workflowId,
      step: this.step,
      tool: this.tool,
      agent: this.agent,
    };
  }
}

/** "workflow wf_1, step 3, tool 'pay_claim'" — the where-part of a message. */
export function describeSubject(subject: ErrorSubject): string {
  const parts: string[] = [];
  if (subject.agent) parts.push(`agent '${subject.agent}'`);
  if (subject.workflowId) parts.push(`workflow ${subject.workflowId}`);
  if (subject.step !== undefined) parts.push(`step ${subject.step}`);
  if (subject.tool) parts.push(`tool '${subject.tool}'`);
  return parts.join(', ');
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function unknownWorkflow(id: string): KeelError {
  return new KeelError(
    'UNKNOWN_WORKFLOW',
    `No workflow with id '${id}' in this database. Run \`keel list\` to see the workflows it holds (and check --db/KEEL_DB).`,
    { workflowId: id },
  );
}
