// What `keel inspect` prints about one workflow: a header (who, what, where it stands, and the
// saved failure) and its journal as a timeline, one line per entry. The detail column is cut to
// stay on one line; `keel inspect --json` has every entry in full.

import { versionLabel } from '../../agent/define-agent.js';
import type { FailureRecord, JournalEntry, WorkflowRecord } from '../../store/types.js';
import { timeOfDay } from '../../util/clock.js';
import { formatFields, formatTable } from './table.js';
import { formatDuration, formatOffset, formatTimestamp } from './time.js';

const detailWidth = 110;

export function formatInspection(workflow: WorkflowRecord, journal: readonly JournalEntry[]): string {
  return [formatHeader(workflow), '\n', formatTimeline(workflow, journal)].join('');
}

function formatHeader(workflow: WorkflowRecord): string {
  const fields: [string, string][] = [
    ['id', workflow.id],
    ['agent', `${workflow.agent}@${versionLabel(workflow.agentVersion)} (${workflow.agentVersion})`],
    ['module', workflow.agentModule ?? '-'],
    ['principal', workflow.principal.id],
    ['status', workflow.status + (workflow.waitingFor ? ` (waiting for ${workflow.waitingFor}${workflow.wakeAt === null ? '' : ` until ${formatTimestamp(workflow.wakeAt)}`})` : '')],
    ['state', workflow.state],
    ['outcome', workflow.outcome ?? '-'],
    ['steps', String(workflow.step)],
    ['started', formatTimestamp(workflow.createdAt)],
    ['updated', formatTimestamp(workflow.updatedAt)],
  ];
  if (workflow.recoveries > 0) fields.push(['recoveries', `${workflow.recoveries} (its worker died and another took over)`]);
  if (workflow.failure) fields.push(...failureFields(workflow.failure));
  return `Workflow ${workflow.id}\n${formatFields(fields)}`;
}

function failureFields(failure: FailureRecord): [string, string][] {
  const fields: [string, string][] = [
    ['failure', `${failure.code} at step ${failure.step} in state '${failure.state}' (${formatTimestamp(failure.at)})`],
    ['  message', failure.message],
  ];
  if (failure.tool) {
    const attempts = failure.attempts === undefined ? '' : `, ${failure.attempts} attempt${failure.attempts === 1 ? '' : 's'}`;
    fields.push(['  tool', `${failure.tool}${failure.errorClass ? ` (${failure.errorClass}${attempts})` : attempts}`]);
  }
  if (failure.args !== undefined) fields.push(['  arguments', shorten(JSON.stringify(failure.args))]);
  if (failure.context) fields.push(['  saved context', describeContext(failure.context)]);
  return fields;
}

/** The keys of a saved context with their sizes: enough to know what was there; --json has the values. */
function describeContext(context: Record<string, unknown>): string {
  const keys = Object.keys(context);
  if (keys.length === 0) return 'empty';
  return keys.map((key) => `${key} (${Buffer.byteLength(JSON.stringify(context[key]) ?? '')} B)`).join(', ');
}

function formatTimeline(workflow: WorkflowRecord, journal: readonly JournalEntry[]): string {
  if (journal.length === 0) {
    return workflow.prunedAt !== null
      ? `Timeline: pruned on ${formatTimestamp(workflow.prunedAt)} (keel prune deleted this workflow's journal; the record above stays).\n`
      : 'Timeline: no journal entries.\n';
  }
  const rows = journal.map((entry) => [
    formatOffset(entry.at - workflow.createdAt),
    String(entry.step),
    entry.kind,
    entry.name ?? '',
    entry.status ?? '',
    entry.attempt === null ? '' : String(entry.attempt),
    entry.durationMs === null ? '' : formatDuration(entry.durationMs),
    entry.tokensIn === null && entry.tokensOut === null ? '' : `${entry.tokensIn ?? 0}/${entry.tokensOut ?? 0}`,
    shorten(entryDetail(entry)),
  ]);
  return `Timeline (${journal.length} entries)\n${formatTable(['AT', 'STEP', 'KIND', 'NAME', 'STATUS', 'ATTEMPT', 'DURATION', 'TOKENS IN/OUT', 'DETAIL'], rows)}`;
}

type Data = Record<string, unknown>;

/** The one thing worth reading about an entry, by kind. */
export function entryDetail(entry: JournalEntry): string {
  const data = (typeof entry.data === 'object' && entry.data !== null ? entry.data : {}) as Data;
  switch (entry.kind) {
    case 'workflow-started':
      return `state ${text(data.state)}, for ${text(data.principal)}`;
    case 'action-decided': {
      const decision = (data.decision ?? {}) as Data;
      const confidence = typeof decision.confidence === 'number' ? `confidence ${decision.confidence.toFixed(2)}` : 'no confidence';
      const invalid = typeof decision.invalid === 'string' ? ` INVALID: ${decision.invalid}` : '';
      return `${confidence}: ${text(decision.reasoning, 'no reasoning given')}${invalid}`;
    }
    case 'checkpoint-saved':
      return `before a side effect, in state ${text(data.state)}`;
    case 'tool-call-completed':
      return `${data.fallback ? `from the fallback (${text(data.fallback)}): ` : ''}result ${JSON.stringify(data.result) ?? 'none'}`;
    case 'tool-call-failed':
      return failedAttemptDetail(entry, data);
    case 'tool-call-deferred':
      return `${waitDetail(entry, data, data.waitMs)}: ${text(data.message)}`;
    case 'fallback-used':
      return fallbackDetail(entry, data);
    case 'tool-call-invalid':
    case 'action-refused':
    case 'model-call-failed':
      return `${text(data.errorClass)}: ${withoutCallPrefix(text(data.message))}`;
    case 'rolled-back':
      return `context back to the checkpoint of step ${text(data.toCheckpoint)}`;
    case 'state-changed':
      return `${text(data.from)} -> ${text(data.to)}`;
    case 'workflow-recovered': {
      const resumes = data.resumesAction as Data | null | undefined;
      return `recovery ${text(data.recoveries)} by ${text(data.worker)}${resumes ? `, re-runs ${text(resumes.tool)} with key ${text(resumes.idempotencyKey)}` : ''}`;
    }
    case 'workflow-resumed':
      return `from ${text(data.from)}${data.waitingFor ? ` (was waiting for ${text(data.waitingFor)})` : ''} by ${text(data.by)}`;
    case 'workflow-parked':
      // The runner's parks carry a wake-up time; parks for a person or an operator carry a code.
      if (typeof data.wakeAt === 'number') return `parked until ${wakeTime(entry, data.wakeAt)} (${text(entry.name)}): ${text(data.message)}`;
      if (data.code === undefined) return `${text(entry.name)}: ${text(data.message)}`;
      return `${text(data.code)}: ${text(data.message)}`;
    case 'workflow-failed':
      return `${text(data.code)}: ${text(data.message)}`;
    case 'workflow-migrated':
      return `version ${text(data.from)} -> ${text(data.to)}`;
    case 'workflow-completed':
      return `outcome ${text(data.outcome)}`;
    case 'workflow-cancelled':
      return text(data.reason);
    case 'permission-decided': {
      // "permit payments:write on claim:C-1, payee:DE89...: permitted by grant gr_1" / "deny ...: no-grant: ..."
      const resources = Array.isArray(data.resources) && data.resources.length > 0 ? ` on ${data.resources.join(', ')}` : '';
      return `${text(entry.status)} ${text(data.permission, 'no permission declared')}${resources}: ${data.code ? `${text(data.code)}: ` : ''}${text(data.reason)}`;
    }
    case 'approval-requested':
      // src/approval's requests name the request, who decides and every rule that fired.
      if (typeof data.requestId === 'string') {
        const reasons = Array.isArray(data.reasons) ? data.reasons.join('; ') : '';
        return `request ${data.requestId} to ${text(data.approvers)}: ${reasons} (confidence ${text(data.confidence, 'none')}; args ${JSON.stringify(data.args) ?? 'none'})`;
      }
      return text(data.message);
    case 'approval-escalated':
      return `request ${text(data.requestId)} escalated from ${text(data.from)} to ${text(data.to)}, undecided since ${text(data.expiredAt)}`;
    case 'approval-decided': {
      const why = data.reason ?? data.comment;
      const changed = data.modifiedArgs === undefined ? '' : `, with args ${JSON.stringify(data.modifiedArgs)}`;
      return `${text(entry.status)} by ${text(data.by)}${changed}${why ? `: ${text(why)}` : ''} (request ${text(data.requestId)})`;
    }
    default:
      return entry.data === null || entry.data === undefined ? '' : (JSON.stringify(entry.data) ?? '');
  }
}

/**
 * What happened to a failed attempt comes first, so a cut line still shows it: "transient, retry
 * in 340 ms: HTTP 503: ...", "rate-limited, parked until 12:00:03Z (retry): ...", "fatal, the
 * workflow fails: ...". Entries written before the runner journaled `next` show class and message.
 */
function failedAttemptDetail(entry: JournalEntry, data: Data): string {
  const message = withoutCallPrefix(text(data.message));
  if (typeof data.next !== 'string') return `${text(data.errorClass)}: ${message}`;
  const what = message.endsWith(`; ${data.next}.`) ? message.slice(0, -(data.next.length + 3)) : message;
  let next: string;
  if (data.final === false) next = waitDetail(entry, data, data.delayMs, 'retry');
  else if (data.next === 'the decider sees the error') next = 'back to the decider';
  else next = data.next;
  return `${text(data.errorClass)}, ${next}: ${what}`;
}

/** "retry in 340 ms", "wait 40 ms", or "parked until 12:00:03Z (circuit-open)". */
function waitDetail(entry: JournalEntry, data: Data, waitMs: unknown, action = 'wait'): string {
  if (data.parked === true && typeof data.wakeAt === 'number') return `parked until ${wakeTime(entry, data.wakeAt)} (${text(entry.kind === 'tool-call-failed' ? 'retry' : entry.status)})`;
  return `${action} ${action === 'retry' ? 'in ' : ''}${formatDuration(typeof waitMs === 'number' ? waitMs : 0)}`;
}

function fallbackDetail(entry: JournalEntry, data: Data): string {
  const after = `(after ${text(data.errorClass)} failures)`;
  switch (entry.status) {
    case 'tool':
      return `tool ${text(data.tool)} answered instead ${after}`;
    case 'cached':
      return `this worker's cached result, ${formatDuration(typeof data.ageMs === 'number' ? data.ageMs : 0)} old, used instead ${after}`;
    case 'value':
      return `the fallback's degraded value used instead ${after}`;
    default:
      return `${text(entry.status)} ${after}`;
  }
}

/** A wake-up time of day when it falls within a day of the entry, the full timestamp otherwise. */
function wakeTime(entry: JournalEntry, wakeAt: number): string {
  return wakeAt - entry.at < 86_400_000 ? timeOfDay(wakeAt) : formatTimestamp(wakeAt);
}

/** "Tool 'x' failed (class, attempt 1 of 3, workflow w, step 2): why" repeats the row's other columns; keep the why. */
function withoutCallPrefix(message: string): string {
  return message.replace(/^(Tool '[^']*'|Model call for workflow \S+ step \d+) failed \([^)]*\): /, '');
}

function text(value: unknown, fallback = '-'): string {
  if (value === undefined || value === null || value === '') return fallback;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function shorten(value: string): string {
  const oneLine = value.replace(/\s+/g, ' ').trim();
  return oneLine.length <= detailWidth ? oneLine : `${oneLine.slice(0, detailWidth - 1)}…`;
}
