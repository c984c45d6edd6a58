// Live progress of the demo, fed by Keel's events. On a terminal tall enough, one line per claim
// redrawn in place as its workflow moves through the states; anywhere else (a pipe, a CI log, a
// batch taller than the screen), one plain line per workflow as it finishes.

import type { KeelEvent } from '../../agent/events.js';
import type { WorkflowRecord } from '../../store/types.js';
import { LiveLines } from '../format/live-lines.js';
import type { Writer } from '../io.js';
import type { SampleClaimLike } from './demo-report.js';
import { verdictOf } from './demo-report.js';

/** Waits the tool runner parks a workflow for; `keel.work({ once })` waits for them. */
const runnerParks = new Set(['retry', 'circuit-open', 'rate-limit']);

export interface DemoClaim {
  workflowId: string;
  sample: SampleClaimLike;
}

export interface DemoProgress {
  onEvent(event: KeelEvent): void;
}

export function startDemoProgress(writer: Writer, claims: readonly DemoClaim[]): DemoProgress {
  const indexOf = new Map(claims.map((claim, index) => [claim.workflowId, index]));
  const live = LiveLines.open(
    writer,
    claims.map((claim) => claimLine(claim, 'pending', 'waiting for a worker')),
  );
  const width = String(claims.length).length;
  let finished = 0;
  return {
    onEvent(event) {
      if (event.type === 'breaker-changed') return;
      const workflowId = event.type === 'workflow-stopped' ? event.workflow.id : event.workflowId;
      const index = indexOf.get(workflowId);
      if (index === undefined) return;
      const claim = claims[index]!;
      if (event.type === 'workflow-stopped') {
        // Parked by the tool runner until a time (a backoff, an open breaker, a spent budget): the
        // worker takes it up again when due, so it has not finished; its line says parked.
        if (event.workflow.status === 'waiting' && runnerParks.has(event.workflow.waitingFor ?? '')) return;
        finished++;
        const line = claimLine(claim, resultWord(event.workflow), `${event.workflow.step} steps  ${verdictOf(claim.sample, event.workflow).text}`);
        if (live) live.update(index, line);
        else writer.write(`[${String(finished).padStart(width)}/${claims.length}] ${line.trimStart()}\n`);
        return;
      }
      if (!live) return;
      if (event.type === 'step-completed') {
        live.update(index, claimLine(claim, 'running', `${event.state.padEnd(9)}  step ${event.step + 1}  ${event.tool} ${event.outcome === 'ok' ? 'done' : 'failed'}`));
      } else if (event.type === 'tool-attempt-failed') {
        live.update(index, claimLine(claim, 'running', `retrying ${event.tool} (${event.errorClass}, attempt ${event.attempt}) in ${event.delayMs} ms`));
      } else {
        live.update(index, claimLine(claim, 'waiting', `parked (${event.waitingFor}) until ${new Date(event.wakeAt).toISOString().slice(11, 19)}Z`));
      }
    },
  };
}

function claimLine(claim: DemoClaim, status: string, detail: string): string {
  return `  ${claim.sample.input.claimId.padEnd(10)}  ${claim.sample.kind.padEnd(15)}  ${status.padEnd(9)}  ${detail}`;
}

function resultWord(workflow: WorkflowRecord): string {
  return workflow.status === 'completed' ? (workflow.outcome ?? 'completed') : workflow.status;
}
