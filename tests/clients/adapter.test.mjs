// The official SDKs against models behind jairouter-adapter (docs/adapter.md):
//   - the `openai` SDK calls Anthropic-, Gemini- and Bedrock-backed models, Azure OpenAI
//     with an Entra ID credential, Gemini and Anthropic on Vertex AI with a service
//     account (access tokens fetched by the adapter), streamed and not, with a tool call;
//   - the `@anthropic-ai/sdk` (POST /v1/messages) calls an OpenAI-backed model and an
//     Anthropic model on Vertex AI, streamed and not.
// Configuration (environment), besides JAIROUTER_URL and JAIROUTER_API_KEY:
//   JAIROUTER_ADAPTER_MODELS  "anthropic=NAME,gemini=NAME,bedrock=NAME[,azure=NAME,
//                             vertex_gemini=NAME,vertex_anthropic=NAME,embed_cohere=NAME,
//                             embed_titan=NAME,embed_bedrock_cohere=NAME,hunyuan=NAME,
//                             dashscope=NAME,tgi=NAME]":
//                             models of those
//                             provider kinds (scripts/test's sdk suite creates them in
//                             front of tests/mock/mock-providers.js)
//   JAIROUTER_MODEL           an OpenAI-compatible model, for the Anthropic SDK
// Without JAIROUTER_ADAPTER_MODELS these tests are skipped (and say so).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const BASE = (process.env.JAIROUTER_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const KEY = process.env.JAIROUTER_API_KEY;
const OPENAI_MODEL = process.env.JAIROUTER_MODEL || 'demo-model';
const MODELS = Object.fromEntries((process.env.JAIROUTER_ADAPTER_MODELS || '').split(',')
	.filter(Boolean).map((kv) => kv.split('=')));
const skip = !process.env.JAIROUTER_ADAPTER_MODELS && 'JAIROUTER_ADAPTER_MODELS is not set';

const openai = new OpenAI({ apiKey: KEY, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: 30000 });
const anthropic = new Anthropic({ apiKey: KEY, baseURL: BASE, maxRetries: 0, timeout: 30000 });

const TOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
	parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

// Provider kind -> the mock's label in its answers ("[label:model] text").
const KINDS = { anthropic: 'anthropic', gemini: 'gemini', bedrock: 'bedrock', azure: 'azure',
	vertex_gemini: 'gemini', vertex_anthropic: 'anthropic', hunyuan: 'hunyuan', dashscope: 'dashscope',
	tgi: 'tgi', bedrock_sts: 'bedrock' };

for (const [kind, label] of Object.entries(KINDS)) {
	const skipKind = skip || (!MODELS[kind] && `no ${kind} model in JAIROUTER_ADAPTER_MODELS`);
	test(`openai SDK: ${kind}-backed model, not streamed`, { skip: skipKind }, async () => {
		const model = MODELS[kind];
		const r = await openai.chat.completions.create({ model, max_tokens: 64,
			messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }] });
		assert.equal(r.object, 'chat.completion');
		assert.equal(r.model, model);
		assert.match(r.choices[0].message.content, new RegExp(`^\\[${label}:.*\\] Say hello$`));
		assert.equal(r.choices[0].finish_reason, 'stop');
		assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
		assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
	});

	test(`openai SDK: ${kind}-backed model, streamed with usage`, { skip: skipKind }, async () => {
		const model = MODELS[kind];
		const stream = await openai.chat.completions.create({ model, stream: true,
			stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'one two three' }] });
		let text = '', finish = null, usage = null, chunks = 0;
		for await (const c of stream) {
			chunks++;
			assert.equal(c.object, 'chat.completion.chunk');
			if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
			if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
			if (c.usage) usage = c.usage;
		}
		assert.ok(chunks >= 3, `several chunks (${chunks})`);
		assert.match(text, /one two three$/);
		assert.equal(finish, 'stop');
		assert.ok(usage && usage.completion_tokens > 0, 'the usage chunk came last');
	});

	// Azure: an OpenAI-compatible answer, tool calls pass as they are; Hunyuan's and TGI's
	// native APIs take no tools through the gateway.
	if (kind === 'azure' || kind === 'hunyuan' || kind === 'tgi') continue;
	test(`openai SDK: ${kind}-backed model calls a tool (streamed, helper accumulates it)`, { skip: skipKind }, async () => {
		const runner = openai.chat.completions.stream({ model: MODELS[kind], tools: TOOLS,
			messages: [{ role: 'user', content: 'Weather in Paris? TOOL' }] });
		const final = await runner.finalChatCompletion();
		const call = final.choices[0].message.tool_calls[0];
		assert.equal(call.function.name, 'get_weather');
		assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
		assert.equal(final.choices[0].finish_reason, 'tool_calls');
	});
}

test('openai SDK: a provider error mid-stream raises an APIError, not a hang', { skip }, async () => {
	const stream = await openai.chat.completions.create({ model: MODELS.anthropic, stream: true,
		messages: [{ role: 'user', content: 'a b c d FAIL_MIDSTREAM' }] });
	await assert.rejects(async () => {
		for await (const _ of stream) { /* drain */ }
	}, (e) => e instanceof OpenAI.APIError && /failed during the stream/.test(e.message));
});

test('openai SDK: a provider 429 is a RateLimitError', { skip }, async () => {
	await assert.rejects(openai.chat.completions.create({ model: MODELS.bedrock,
		messages: [{ role: 'user', content: 'STATUS:429' }] }), OpenAI.RateLimitError);
});

test('anthropic SDK: messages.create on an OpenAI-backed model', { skip }, async () => {
	const m = await anthropic.messages.create({ model: OPENAI_MODEL, max_tokens: 64, system: 'Be brief.',
		messages: [{ role: 'user', content: 'Say hello' }] });
	assert.equal(m.type, 'message');
	assert.equal(m.role, 'assistant');
	assert.equal(m.content[0].type, 'text');
	assert.ok(m.content[0].text.length > 0);
	assert.equal(m.stop_reason, 'end_turn');
	assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
});

test('anthropic SDK: messages.stream on an OpenAI-backed model', { skip }, async () => {
	const stream = anthropic.messages.stream({ model: OPENAI_MODEL, max_tokens: 64,
		messages: [{ role: 'user', content: 'Say hello' }] });
	let text = '';
	stream.on('text', (t) => { text += t; });
	const final = await stream.finalMessage();
	assert.ok(text.length > 0);
	assert.equal(final.content[0].text, text);
	assert.equal(final.stop_reason, 'end_turn');
	assert.ok(final.usage.output_tokens > 0);
});

test('anthropic SDK: errors are typed (unknown model is NotFoundError)', { skip }, async () => {
	await assert.rejects(anthropic.messages.create({ model: 'no-such-model', max_tokens: 8,
		messages: [{ role: 'user', content: 'x' }] }), Anthropic.NotFoundError);
});

const skipVertex = skip || (!MODELS.vertex_anthropic && 'no vertex_anthropic model in JAIROUTER_ADAPTER_MODELS');

test('anthropic SDK: messages.create and messages.stream on Anthropic on Vertex AI', { skip: skipVertex }, async () => {
	const model = MODELS.vertex_anthropic;
	const m = await anthropic.messages.create({ model, max_tokens: 64, system: 'Be brief.',
		messages: [{ role: 'user', content: 'Say hello' }] });
	assert.equal(m.type, 'message');
	assert.match(m.content[0].text, /^\[anthropic:.*\] Say hello$/);
	assert.equal(m.stop_reason, 'end_turn');
	assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
	const stream = anthropic.messages.stream({ model, max_tokens: 64,
		messages: [{ role: 'user', content: 'one two three' }] });
	let text = '';
	stream.on('text', (t) => { text += t; });
	const final = await stream.finalMessage();
	assert.match(text, /one two three$/);
	assert.equal(final.content[0].text, text);
	assert.equal(final.stop_reason, 'end_turn');
});

// Embeddings translated for Cohere (embed v2), Bedrock (Titan, Cohere on Bedrock) and Gemini
// (batchEmbedContents for a list, embedContent for one text): the
// mock's vector of a text starts with its length.
for (const [kind, input] of [['embed_cohere', ['abc', 'defgh']], ['embed_titan', 'abcdefgh'],
	['embed_bedrock_cohere', ['abc', 'defgh']], ['embed_gemini', ['abc', 'defgh']], ['embed_gemini', 'abcdefgh']]) {
	test(`openai SDK: embeddings.create on ${kind} (${Array.isArray(input) ? 'a list' : 'one text'})`, { skip: skip || (!MODELS[kind] && `no ${kind} model`) }, async () => {
		const r = await openai.embeddings.create({ model: MODELS[kind], input, encoding_format: 'float' });
		assert.equal(r.object, 'list');
		assert.equal(r.model, MODELS[kind]);
		const texts = Array.isArray(input) ? input : [input];
		assert.deepEqual(r.data.map((d) => [d.index, d.embedding[0]]), texts.map((t, i) => [i, t.length]));
		// The SDK's default asks for base64 vectors and decodes them.
		const b = await openai.embeddings.create({ model: MODELS[kind], input });
		assert.deepEqual(b.data.map((d) => Array.from(d.embedding)), texts.map((t) => [t.length, 0.5, -0.5]));
	});
}
