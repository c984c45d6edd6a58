// The README's quick start: a tiny agent with one tool. Run it with
//   echo '{"name":"Ada"}' | npx keel run ./examples/quickstart/hello-agent.mjs --input -
import { z } from 'zod';
import { defineAgent, defineTool } from 'keel';

const greet = defineTool({
  name: 'greet',
  description: 'Write a greeting for a person.',
  input: z.object({ name: z.string().min(1) }),
  execute: async ({ name }) => ({ greeting: `Hello, ${name}!` }),
});

export default defineAgent({
  name: 'hello',
  instructions: 'Greet the person named in the task input.',
  input: z.object({ name: z.string() }),
  tools: [greet],
  initial: 'greeting',
  states: {
    greeting: { tools: ['greet'], next: ['done'], on: { greet: 'done' } },
    done: { final: true },
  },
});

// What the scripted model decides when KEEL_MODEL is not set.
export const script = (view) => ({
  tool: 'greet',
  input: { name: view.input.name },
  reasoning: 'The task names one person to greet.',
  confidence: 0.99,
});
