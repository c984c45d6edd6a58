// keel/testing: what users need to test their own agents without a network or a real model.

export { scriptedModel } from './model/scripted-model.js';
export type { Script, ScriptedAction, ScriptedModel, ScriptedModelOptions } from './model/scripted-model.js';
export { ManualClock } from './util/clock.js';
export { startFakeOpenAIServer, FakeEndpoint, type FakeOpenAIServer, type FakeOpenAIServerOptions, type FakeReply, type FakeRequest, type FakeUsage } from './model/fake-openai-server.js';
export { seededRandom } from './util/seeded-random.js';
