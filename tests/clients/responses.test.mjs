// The official OpenAI Node SDK's Responses API client against the gateway
// (docs/api.md): client.responses.create (streamed and not), retrieve, inputItems.list
// and delete of a stored response, and the errors of an unknown id.
// Configuration (environment): JAIROUTER_URL, JAIROUTER_API_KEY, JAIROUTER_MODEL (an
// OpenAI-compatible model), as for openai.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';

const BASE = (process.env.JAIROUTER_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const KEY = process.env.JAIROUTER_API_KEY;
const MODEL = process.env.JAIROUTER_MODEL || 'demo-model';

if (!KEY) {
	throw new Error('JAIROUTER_API_KEY must be set to a valid gateway key');
}

const client = new OpenAI({ apiKey: KEY, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: 30000 });

function assertUsage(u, where) {
	assert.ok(u, `${where}: usage present`);
	assert.ok(Number.isInteger(u.input_tokens) && u.input_tokens > 0, `${where}: input_tokens ${u.input_tokens}`);
	assert.ok(Number.isInteger(u.output_tokens) && u.output_tokens > 0, `${where}: output_tokens ${u.output_tokens}`);
	assert.equal(u.total_tokens, u.input_tokens + u.output_tokens, `${where}: total = input + output`);
}

// The gateway records a response's owner when the creating request ends; the next
// request may be decided just before that. Up to 50 attempts, 100 ms apart.
async function retrieveWhenRecorded(id) {
	for (let i = 0; ; i++) {
		try {
			return await client.responses.retrieve(id);
		} catch (e) {
			if (!(e instanceof OpenAI.NotFoundError) || i >= 49) throw e;
			await sleep(100);
		}
	}
}

test('responses.create: a stored response with output_text, usage and x-request-id', async () => {
	const { data, response } = await client.responses
		.create({ model: MODEL, input: 'Say hello.', instructions: 'Be brief.' })
		.withResponse();
	assert.equal(response.status, 200);
	assert.ok(response.headers.get('x-request-id'), 'x-request-id present');
	assert.equal(data.object, 'response');
	assert.match(data.id, /^resp_/);
	assert.equal(data.model, MODEL);
	assert.equal(data.status, 'completed');
	assert.ok(data.output_text.length > 0, 'output_text (the SDK joins the output_text parts)');
	assertUsage(data.usage, 'create');
});

test('responses.create with stream: true: typed events in order, response.completed carries the usage', async () => {
	const stream = await client.responses.create({ model: MODEL, input: 'Stream a hello.', stream: true });
	const types = [];
	let text = '';
	let final = null;
	let seq = 0;
	for await (const ev of stream) {
		types.push(ev.type);
		assert.equal(ev.sequence_number, seq++, `sequence_number of ${ev.type}`);
		if (ev.type === 'response.output_text.delta') text += ev.delta;
		if (ev.type === 'response.completed') final = ev.response;
	}
	assert.deepEqual(types.slice(0, 2), ['response.created', 'response.in_progress']);
	assert.equal(types[types.length - 1], 'response.completed');
	assert.ok(final, 'response.completed received');
	assert.equal(final.model, MODEL);
	assert.ok(text.length > 0, 'text deltas');
	assert.equal(final.output[0].content[0].text, text, 'the deltas make the final text');
	assertUsage(final.usage, 'stream');
});

test('responses.retrieve, inputItems.list and delete of the caller\'s own response', async () => {
	const created = await client.responses.create({ model: MODEL, input: 'Remember this.' });
	const got = await retrieveWhenRecorded(created.id);
	assert.equal(got.id, created.id);
	assert.equal(got.output_text, created.output_text);
	const items = [];
	for await (const item of client.responses.inputItems.list(created.id)) items.push(item);
	assert.equal(items.length, 1);
	assert.equal(items[0].content[0].text, 'Remember this.');
	const next = await client.responses.create({ model: MODEL, input: 'And now?', previous_response_id: created.id });
	assert.equal(next.previous_response_id, created.id);
	await client.responses.delete(created.id);
	await assert.rejects(client.responses.retrieve(created.id), OpenAI.NotFoundError);
});

test('unknown response ids: NotFoundError, and BadRequestError as previous_response_id', async () => {
	await assert.rejects(client.responses.retrieve('resp_doesnotexist'), (e) => {
		assert.ok(e instanceof OpenAI.NotFoundError, `NotFoundError, got ${e && e.constructor.name}`);
		assert.equal(e.error.type, 'invalid_request_error');
		return true;
	});
	await assert.rejects(
		client.responses.create({ model: MODEL, input: 'x', previous_response_id: 'resp_doesnotexist' }),
		(e) => {
			assert.ok(e instanceof OpenAI.BadRequestError, `BadRequestError, got ${e && e.constructor.name}`);
			assert.equal(e.param, 'previous_response_id');
			return true;
		},
	);
});
