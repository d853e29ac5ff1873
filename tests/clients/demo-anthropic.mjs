// The demo as a user meets it (tests/demo/run.sh starts scripts/demo and runs this file
// with the values of its env file): the official `@anthropic-ai/sdk`, out of the box,
// against the demo's model, streamed and not, and the official `openai` SDK streaming
// the same model (such a stream is metered through the adapter).
//   JAIROUTER_URL, JAIROUTER_API_KEY, JAIROUTER_MODEL   from the demo's env file
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const BASE = process.env.JAIROUTER_URL.replace(/\/+$/, '');
const KEY = process.env.JAIROUTER_API_KEY;
const MODEL = process.env.JAIROUTER_MODEL;

const anthropic = new Anthropic({ apiKey: KEY, baseURL: BASE, maxRetries: 0, timeout: 30000 });
const openai = new OpenAI({ apiKey: KEY, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: 30000 });

test('demo: anthropic SDK messages.create on the demo model', async () => {
	const m = await anthropic.messages.create({ model: MODEL, max_tokens: 64, system: 'Be brief.',
		messages: [{ role: 'user', content: 'Say hello' }] });
	assert.equal(m.type, 'message');
	assert.equal(m.role, 'assistant');
	assert.equal(m.content[0].type, 'text');
	assert.ok(m.content[0].text.length > 0);
	assert.equal(m.stop_reason, 'end_turn');
	assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
});

test('demo: anthropic SDK messages.stream on the demo model', async () => {
	const stream = anthropic.messages.stream({ model: MODEL, max_tokens: 64,
		messages: [{ role: 'user', content: 'Say hello' }] });
	let text = '';
	stream.on('text', (t) => { text += t; });
	const final = await stream.finalMessage();
	assert.ok(text.length > 0);
	assert.equal(final.content[0].text, text);
	assert.equal(final.stop_reason, 'end_turn');
	assert.ok(final.usage.output_tokens > 0);
});

test('demo: anthropic SDK with a wrong key is an AuthenticationError', async () => {
	const bad = new Anthropic({ apiKey: `jr-${'0'.repeat(64)}`, baseURL: BASE, maxRetries: 0 });
	await assert.rejects(bad.messages.create({ model: MODEL, max_tokens: 8,
		messages: [{ role: 'user', content: 'x' }] }), Anthropic.AuthenticationError);
});

test('demo: openai SDK streams the demo model with usage', async () => {
	const stream = await openai.chat.completions.create({ model: MODEL, stream: true,
		stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'one two three' }] });
	let text = '';
	let usage = null;
	for await (const chunk of stream) {
		text += chunk.choices[0]?.delta?.content || '';
		if (chunk.usage) usage = chunk.usage;
	}
	assert.ok(text.length > 0);
	assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0);
});
