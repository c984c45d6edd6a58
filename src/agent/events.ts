// Events a Keel instance reports while it works, for progress displays and tests. They are
// notifications only: the journal in the store is the record.

import type { WorkflowRecord } from '../store/types.js';

export type KeelEvent =
  | { type: 'step-completed'; workflowId: string; step: number; state: string; tool: string; outcome: 'ok' | 'error' }
  | { type: 'tool-attempt-failed'; workflowId: string; step: number; tool: string; attempt: number; errorClass: string; delayMs: number }
  | { type: 'workflow-parked'; workflowId: string; step: number; waitingFor: string; wakeAt: number }
  | { type: 'breaker-changed'; service: string; from: string; to: string; reason: string }
  | { type: 'workflow-stopped'; workflow: WorkflowRecord };

export type KeelEventListener = (event: KeelEvent) => void;
