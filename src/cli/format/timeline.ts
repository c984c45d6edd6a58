// What `keel inspect` prints about one workflow: a header (who, what, where it stands, and the
// saved failure) and its journal as a timeline, one line per entry. The detail column is cut to
// stay on one line; `keel inspect --json` has every entry in full.

import { versionLabel } from '../../agent/define-agent.js';
import type { FailureRecord, JournalEntry, WorkflowRecord } from '../../store/types.js';
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
    ['status', workflow.status + (workflow.waitingFor ? ` (waiting for ${workflow.waitingFor})` : '')],
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
      return `result ${JSON.stringify(data.result) ?? 'none'}`;
    case 'tool-call-failed':
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
    case 'workflow-failed':
      return `${text(data.code)}: ${text(data.message)}`;
    case 'workflow-migrated':
      return `version ${text(data.from)} -> ${text(data.to)}`;
    case 'workflow-completed':
      return `outcome ${text(data.outcome)}`;
    case 'workflow-cancelled':
      return text(data.reason);
    default:
      return entry.data === null || entry.data === undefined ? '' : (JSON.stringify(entry.data) ?? '');
  }
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
