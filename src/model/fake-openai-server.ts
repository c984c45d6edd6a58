// A small local HTTP server that speaks enough of OpenAI's wire protocol for Keel's model path to
// run end to end without a network: POST /v1/chat/completions (what `openai-compatible:` models
// call) and POST /v1/responses (what `openai:` models call). Each request gets the next scripted
// reply: a tool call in Keel's wrapped form { reasoning, confidence, input }, a text answer, or an
// HTTP error (429, 500, ...). Every request body is recorded so tests can check what the provider
// really sent. It binds 127.0.0.1 only and must be closed by the test that started it.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Tokens to report in the reply's `usage`; when omitted, about four characters a token. */
export interface FakeUsage {
  inputTokens: number;
  outputTokens: number;
}

export type FakeReply =
  | {
      type: 'tool-call';
      tool: string;
      /** The tool's own arguments; sent wrapped as { reasoning, confidence, input }. */
      input?: unknown;
      reasoning?: string;
      confidence?: number;
      /** Sent verbatim as the call's arguments instead of the wrapped JSON (e.g. to send broken JSON). */
      rawArguments?: string;
      usage?: FakeUsage;
    }
  | { type: 'text'; text: string; usage?: FakeUsage }
  | { type: 'error'; status: number; message?: string; headers?: Readonly<Record<string, string>> };

export const FakeEndpoint = {
  chatCompletions: 'chat-completions',
  responses: 'responses',
} as const;
export type FakeEndpoint = (typeof FakeEndpoint)[keyof typeof FakeEndpoint];

export interface FakeRequest {
  endpoint: FakeEndpoint;
  path: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body. */
  body: Record<string, unknown>;
}

export interface FakeOpenAIServerOptions {
  /** Replies in order, one per request; or a function choosing the reply for each request. */
  replies: readonly FakeReply[] | ((request: FakeRequest, index: number) => FakeReply);
  /** The `model` reported back (default: the model named in the request). */
  modelId?: string;
}

export interface FakeOpenAIServer {
  /** Base URL including /v1, e.g. http://127.0.0.1:43123/v1. */
  readonly url: string;
  readonly port: number;
  /** Every request received, oldest first. */
  readonly requests: readonly FakeRequest[];
  close(): Promise<void>;
}

const endpointsByPath: Readonly<Record<string, FakeEndpoint>> = {
  '/v1/chat/completions': FakeEndpoint.chatCompletions,
  '/v1/responses': FakeEndpoint.responses,
};

export async function startFakeOpenAIServer(options: FakeOpenAIServerOptions): Promise<FakeOpenAIServer> {
  const requests: FakeRequest[] = [];
  const server = createServer((incoming, outgoing) => {
    handle(incoming, outgoing).catch((error: unknown) => {
      sendError(outgoing, 500, `The fake OpenAI server failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  });

  async function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const path = (incoming.url ?? '/').split('?')[0]!;
    const endpoint = endpointsByPath[path];
    if (incoming.method !== 'POST' || !endpoint) {
      return sendError(outgoing, 404, `The fake OpenAI server answers only POST /v1/chat/completions and POST /v1/responses, not ${incoming.method} ${path}.`);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(incoming)) as Record<string, unknown>;
    } catch {
      return sendError(outgoing, 400, `The body of POST ${path} is not JSON.`);
    }
    const request: FakeRequest = { endpoint, path, headers: incoming.headers, body };
    const index = requests.length;
    requests.push(request);
    const reply = nextReply(options.replies, request, index);
    if (!reply) {
      return sendError(outgoing, 500, `The fake OpenAI server has no scripted reply for request ${index + 1} (it was given ${index}); add more replies to the test.`);
    }
    if (reply.type === 'error') {
      return sendError(outgoing, reply.status, reply.message ?? `Scripted error ${reply.status}.`, reply.headers);
    }
    const modelId = options.modelId ?? (typeof body.model === 'string' ? body.model : 'fake-model');
    const answer = endpoint === FakeEndpoint.chatCompletions ? chatCompletion(reply, request, index, modelId) : response(reply, request, index, modelId);
    sendJson(outgoing, 200, answer);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    close() {
      // Idempotent, so a test may close in its body and again in afterEach.
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // fetch keeps connections alive; close() alone would wait for them to time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function nextReply(replies: FakeOpenAIServerOptions['replies'], request: FakeRequest, index: number): FakeReply | undefined {
  return typeof replies === 'function' ? replies(request, index) : replies[index];
}

type Answer = Exclude<FakeReply, { type: 'error' }>;

function callArguments(reply: Extract<FakeReply, { type: 'tool-call' }>): string {
  return (
    reply.rawArguments ??
    JSON.stringify({ reasoning: reply.reasoning ?? `Calling ${reply.tool}.`, confidence: reply.confidence ?? 0.9, input: reply.input ?? {} })
  );
}

function usageOf(reply: Answer, request: FakeRequest): FakeUsage {
  if (reply.usage) return reply.usage;
  const output = reply.type === 'text' ? reply.text : callArguments(reply);
  return { inputTokens: estimateTokens(JSON.stringify(request.body)), outputTokens: estimateTokens(output) };
}

/** The Chat Completions answer: one choice, with either tool_calls or content. */
function chatCompletion(reply: Answer, request: FakeRequest, index: number, modelId: string): Record<string, unknown> {
  const usage = usageOf(reply, request);
  const message =
    reply.type === 'text'
      ? { role: 'assistant', content: reply.text }
      : { role: 'assistant', content: null, tool_calls: [{ id: `call_${index + 1}`, type: 'function', function: { name: reply.tool, arguments: callArguments(reply) } }] };
  return {
    id: `chatcmpl-fake-${index + 1}`,
    object: 'chat.completion',
    created: 0,
    model: modelId,
    choices: [{ index: 0, message, finish_reason: reply.type === 'text' ? 'stop' : 'tool_calls' }],
    usage: { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens, total_tokens: usage.inputTokens + usage.outputTokens },
  };
}

/** The Responses API answer: one output item, a function_call or an assistant message. */
function response(reply: Answer, request: FakeRequest, index: number, modelId: string): Record<string, unknown> {
  const usage = usageOf(reply, request);
  const output =
    reply.type === 'text'
      ? { type: 'message', id: `msg_${index + 1}`, role: 'assistant', content: [{ type: 'output_text', text: reply.text, annotations: [] }] }
      : { type: 'function_call', id: `fc_${index + 1}`, call_id: `call_${index + 1}`, name: reply.tool, arguments: callArguments(reply) };
  return {
    id: `resp_fake_${index + 1}`,
    object: 'response',
    created_at: 0,
    status: 'completed',
    model: modelId,
    output: [output],
    usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens, total_tokens: usage.inputTokens + usage.outputTokens },
  };
}

function readBody(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    incoming.on('error', reject);
  });
}

function sendJson(outgoing: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  outgoing.writeHead(status, { 'content-type': 'application/json', ...headers });
  outgoing.end(JSON.stringify(value));
}

/** Errors in OpenAI's shape, so the providers read the message out of them. */
function sendError(outgoing: ServerResponse, status: number, message: string, headers: Readonly<Record<string, string>> = {}): void {
  if (outgoing.headersSent) return void outgoing.destroy();
  const type = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error';
  sendJson(outgoing, status, { error: { message, type, param: null, code: type } }, headers);
}

// Deterministic stand-in for a tokenizer, as in the scripted model.
function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
