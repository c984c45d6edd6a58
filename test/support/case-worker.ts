// A case worker that hands every case to a person (escalate_to_human) and, when sent back, closes
// it as instructed: the smallest agent for the handoff tests of the API and of the CLI.

import { z } from 'zod';
import { defineAgent, type Agent } from '../../src/agent/define-agent.js';
import { defineTool } from '../../src/tools/tool.js';

/** `closed` collects the notes the agent closed cases with. The task input may name the case (`{ case: 'A-1' }`). */
export function caseWorker(closed: string[]): Agent {
  const close = defineTool({ name: 'close', description: 'Closes the case with a note.', input: z.object({ note: z.string() }), execute: ({ note }) => void closed.push(note) });
  return defineAgent({
    name: 'case-worker',
    tools: [close],
    humanHandoff: true,
    initial: 'open',
    states: { open: { tools: ['close'], next: ['closed'], on: { close: 'closed' } }, closed: { final: true } },
    decide: (view) => {
      const last = view.lastObservation;
      if (last?.type === 'tool-result' && last.tool === 'escalate_to_human') {
        return { tool: 'close', args: { note: `as instructed: ${(last.result as { instructions: string }).instructions}` } };
      }
      const named = (view.input as { case?: string } | null)?.case;
      return { tool: 'escalate_to_human', args: { reason: `${named ? `case ${named}` : 'the customer'} disputes the contract terms`, summary: 'read the contract' } };
    },
  });
}
