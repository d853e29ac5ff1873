// The official OpenAI Node SDK as the outside judge of JAiRouter's OpenAI
// compatibility. Configuration (environment):
//
//   JAIROUTER_URL      gateway base URL, without /v1 (default http://127.0.0.1:8080)
//   JAIROUTER_API_KEY  a valid key for the gateway (required)
//   JAIROUTER_MODEL    a model that key may use (default demo-model)
//   JAIROUTER_EMBEDDING_MODEL  model for the embeddings test (default JAIROUTER_MODEL)
//
// The files and batches tests need the key's tenant to have a files model (the tenant
// setting files_model, docs/api.md "Files and batches") whose backend serves both APIs.
//
// Run with tests/clients/run.sh (or `node --test openai.test.mjs`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI, { toFile } from 'openai';

const BASE = (process.env.JAIROUTER_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const KEY = process.env.JAIROUTER_API_KEY;
const MODEL = process.env.JAIROUTER_MODEL || 'demo-model';
const EMBEDDING_MODEL = process.env.JAIROUTER_EMBEDDING_MODEL || MODEL;

if (!KEY) {
	throw new Error('JAIROUTER_API_KEY must be set to a valid gateway key');
}

function client(apiKey = KEY, extra = {}) {
	return new OpenAI({ apiKey, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: 30000, ...extra });
}

const MESSAGES = [
	{ role: 'system', content: 'You are a test fixture.' },
	{ role: 'user', content: 'Say hello.' },
];

function assertUsage(usage, where) {
	assert.ok(usage, `${where}: usage present`);
	for (const f of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
		assert.ok(Number.isInteger(usage[f]) && usage[f] >= 0, `${where}: usage.${f} is a count (${usage[f]})`);
	}
	assert.ok(usage.completion_tokens > 0, `${where}: completion_tokens > 0`);
	assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, `${where}: total = prompt + completion`);
}

// The x-request-id the caller sees; when the upstream is the JAiRouter mock it
// also reports the id it received, which must be the same one.
function assertRequestId(headers, where) {
	const id = headers.get('x-request-id');
	assert.ok(id && id.length > 0, `${where}: x-request-id response header present`);
	const upstream = headers.get('x-mock-request-id');
	if (upstream) assert.equal(upstream, id, `${where}: the upstream received the same request id`);
	return id;
}

async function nonStreamed() {
	return client().chat.completions.create({ model: MODEL, messages: MESSAGES }).withResponse();
}

test('chat completion: content, usage and x-request-id', async () => {
	const { data, response } = await nonStreamed();
	assert.equal(response.status, 200);
	assert.equal(data.object, 'chat.completion');
	assert.match(data.id, /\S/);
	assert.equal(typeof data.model, 'string');
	assert.equal(data.choices.length, 1);
	const choice = data.choices[0];
	assert.equal(choice.message.role, 'assistant');
	assert.equal(typeof choice.message.content, 'string');
	assert.ok(choice.message.content.length > 0, 'non-empty content');
	assert.equal(choice.finish_reason, 'stop');
	assertUsage(data.usage, 'chat');
	assertRequestId(response.headers, 'chat');
});

test('streamed chat completion: same text as non-streamed, no usage unless asked', async () => {
	const { data: plain } = await nonStreamed();
	const { data: stream, response } = await client()
		.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true })
		.withResponse();
	assert.match(response.headers.get('content-type') || '', /^text\/event-stream/);
	assertRequestId(response.headers, 'stream');
	let text = '';
	let chunks = 0;
	let finish = null;
	let role = null;
	for await (const chunk of stream) {
		chunks++;
		assert.equal(chunk.object, 'chat.completion.chunk');
		assert.ok(!chunk.usage, 'no usage in a chunk when include_usage was not requested');
		assert.ok(chunk.choices.length > 0, 'no usage-only chunk when include_usage was not requested');
		const c = chunk.choices[0];
		if (c.delta.role) role = c.delta.role;
		if (c.delta.content) text += c.delta.content;
		if (c.finish_reason) finish = c.finish_reason;
	}
	assert.ok(chunks >= 2, `several chunks (${chunks})`);
	assert.equal(role, 'assistant');
	assert.equal(finish, 'stop');
	assert.equal(text, plain.choices[0].message.content);
});

test('streamed chat completion with stream_options.include_usage: final usage chunk', async () => {
	const { data: plain } = await nonStreamed();
	const stream = await client().chat.completions.create({
		model: MODEL,
		messages: MESSAGES,
		stream: true,
		stream_options: { include_usage: true },
	});
	let text = '';
	let last = null;
	let usageChunks = 0;
	for await (const chunk of stream) {
		last = chunk;
		if (chunk.usage) usageChunks++;
		for (const c of chunk.choices) if (c.delta.content) text += c.delta.content;
	}
	assert.equal(text, plain.choices[0].message.content);
	assert.equal(usageChunks, 1, 'exactly one chunk carries usage');
	assert.ok(last, 'stream not empty');
	assert.deepEqual(last.choices, [], 'the usage chunk is last and has no choices');
	assertUsage(last.usage, 'stream usage');
	assert.equal(last.usage.prompt_tokens, plain.usage.prompt_tokens);
	assert.equal(last.usage.completion_tokens, plain.usage.completion_tokens);
});

test('embeddings (SDK default base64 and explicit float)', async () => {
	const c = client();
	const { data: r, response } = await c.embeddings.create({ model: EMBEDDING_MODEL, input: 'hello world' }).withResponse();
	assertRequestId(response.headers, 'embeddings');
	assert.equal(r.object, 'list');
	assert.equal(r.data.length, 1);
	assert.equal(r.data[0].object, 'embedding');
	assert.equal(r.data[0].index, 0);
	const v = r.data[0].embedding;
	assert.ok(Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x)), 'float vector');
	assert.ok(Number.isInteger(r.usage.prompt_tokens) && r.usage.prompt_tokens > 0, 'usage.prompt_tokens');

	const f = await c.embeddings.create({
		model: EMBEDDING_MODEL,
		input: ['hello world', 'second input'],
		encoding_format: 'float',
	});
	assert.deepEqual(
		f.data.map((d) => d.index),
		[0, 1],
	);
	assert.equal(f.data[0].embedding.length, v.length);
});

test('models list includes the configured model', async () => {
	const ids = [];
	for await (const m of client().models.list()) {
		assert.equal(m.object, 'model');
		ids.push(m.id);
	}
	assert.ok(ids.includes(MODEL), `${MODEL} in ${JSON.stringify(ids)}`);
});

function assertAuthError(err, where) {
	assert.ok(err instanceof OpenAI.AuthenticationError, `${where}: AuthenticationError, got ${err?.constructor?.name}: ${err?.message}`);
	assert.equal(err.status, 401);
	assert.equal(err.type, 'authentication_error', `${where}: error.type`);
	assert.equal(err.error?.type, 'authentication_error');
	assert.equal(typeof err.error?.message, 'string');
	assert.ok(err.requestID, `${where}: x-request-id on the error`);
	return true;
}

test('a wrong key -> AuthenticationError (401, authentication_error)', async () => {
	// Well-formed but unknown key, then a malformed one.
	const wrong = `jr-${randomBytes(32).toString('hex')}`;
	await assert.rejects(client(wrong).chat.completions.create({ model: MODEL, messages: MESSAGES }), (e) =>
		assertAuthError(e, 'unknown key'),
	);
	await assert.rejects(client('sk-not-a-jairouter-key').chat.completions.create({ model: MODEL, messages: MESSAGES }), (e) =>
		assertAuthError(e, 'malformed key'),
	);
});

test('a missing key -> AuthenticationError (401)', async () => {
	// The SDK insists on an apiKey; a null header removes Authorization.
	const c = client('unused', { defaultHeaders: { Authorization: null } });
	await assert.rejects(c.chat.completions.create({ model: MODEL, messages: MESSAGES }), (e) => {
		assert.ok(e instanceof OpenAI.AuthenticationError, `AuthenticationError, got ${e?.constructor?.name}: ${e?.message}`);
		assert.equal(e.status, 401);
		return true;
	});
});

test('an unknown model -> NotFoundError (404, model_not_found)', async () => {
	const model = `no-such-model-${randomBytes(4).toString('hex')}`;
	await assert.rejects(client().chat.completions.create({ model, messages: MESSAGES }), (e) => {
		assert.ok(e instanceof OpenAI.NotFoundError, `NotFoundError, got ${e?.constructor?.name}: ${e?.message}`);
		assert.equal(e.status, 404);
		assert.equal(e.code, 'model_not_found');
		assert.equal(e.type, 'invalid_request_error');
		return true;
	});
});

// ---- every service type the SDK has a call for (docs/catalogue.md) ----------------------

test('audio speech: binary audio passes through', async () => {
	const res = await client().audio.speech.create({ model: MODEL, voice: 'alloy', input: 'Hello.' });
	assert.equal(res.status, 200);
	const bytes = Buffer.from(await res.arrayBuffer());
	assert.ok(bytes.length > 4, 'some audio bytes');
	assert.equal(bytes[0], 0xff, 'an MPEG frame header from the mock');
});

test('audio transcriptions: multipart upload (toFile), model after the file', async () => {
	const file = await toFile(Buffer.from('RIFF0123456789'), 'hello.wav', { type: 'audio/wav' });
	const data = await client().audio.transcriptions.create({ file, model: MODEL });
	assert.match(data.text, /14 bytes of hello\.wav/);
});

test('images generate', async () => {
	const data = await client().images.generate({ model: MODEL, prompt: 'a cat', n: 2 });
	assert.equal(data.data.length, 2);
	assert.ok(data.data[0].b64_json.length > 0);
});

test('images edit: multipart upload (toFile)', async () => {
	const image = await toFile(Buffer.from('PNG....'), 'in.png', { type: 'image/png' });
	const data = await client().images.edit({ model: MODEL, image, prompt: 'add a hat' });
	assert.equal(data.data.length, 1);
});

// ---- files and batches (docs/api.md, "Files and batches") -------------------------------

// The gateway records an id's owner when the creating request ends; the next request may
// be decided just before that (docs/api.md). Up to 50 attempts, 100 ms apart.
async function whenRecorded(call) {
	for (let i = 0; ; i++) {
		try {
			return await call();
		} catch (e) {
			if (!(e instanceof OpenAI.NotFoundError) || i >= 49) throw e;
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}

test('files: create, list, retrieve, content, delete', async () => {
	const c = client();
	const text = 'first line\nsecond line\n';
	const created = await c.files.create({ file: await toFile(Buffer.from(text), 'notes.txt'), purpose: 'user_data' });
	assert.match(created.id, /^file-/);
	assert.equal(created.object, 'file');
	assert.equal(created.bytes, Buffer.byteLength(text));
	assert.equal(created.filename, 'notes.txt');
	assert.equal(created.purpose, 'user_data');
	const got = await whenRecorded(() => c.files.retrieve(created.id));
	assert.equal(got.id, created.id);
	const content = await c.files.content(created.id);
	assert.equal(await content.text(), text);
	// The list is the tenant's own (answered by the gateway), newest first, paginated.
	const second = await c.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'user_data' });
	await whenRecorded(() => c.files.retrieve(second.id));
	const ids = [];
	for await (const f of c.files.list({ purpose: 'user_data', limit: 1 })) ids.push(f.id);
	assert.ok(ids.includes(created.id) && ids.includes(second.id), `both listed: ${ids}`);
	const page = await c.files.list({ limit: 1 });
	assert.equal(page.data.length, 1);
	assert.equal(page.hasNextPage(), true);
	const deleted = await c.files.delete(created.id);
	assert.deepEqual([deleted.id, deleted.deleted], [created.id, true]);
	await assert.rejects(c.files.retrieve(created.id), (e) => e.status === 404);
	await c.files.delete(second.id);
});

test('files: an unknown file id is NotFoundError', async () => {
	await assert.rejects(client().files.retrieve('file-doesnotexist'), (e) => {
		assert.equal(e.status, 404);
		assert.equal(e.error?.type ?? e.type, 'invalid_request_error');
		return true;
	});
});

test('batches: create, retrieve until completed (with usage), list, cancel', async () => {
	const c = client();
	const line = (i) => JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions',
		body: { model: MODEL, messages: [{ role: 'user', content: `Hello ${i}` }] } });
	const input = await c.files.create({ file: await toFile(Buffer.from(`${line(1)}\n${line(2)}\n`), 'batch.jsonl'),
		purpose: 'batch' });
	assert.equal(input.purpose, 'batch');
	const batch = await whenRecorded(() => c.batches.create({ input_file_id: input.id,
		endpoint: '/v1/chat/completions', completion_window: '24h' }));
	assert.match(batch.id, /^batch_/);
	assert.equal(batch.object, 'batch');
	assert.equal(batch.input_file_id, input.id);
	let got = await whenRecorded(() => c.batches.retrieve(batch.id));
	for (let i = 0; i < 5 && got.status !== 'completed'; i++) got = await c.batches.retrieve(batch.id);
	assert.equal(got.status, 'completed');
	assert.equal(got.request_counts.completed, 2);
	assert.ok(got.usage && got.usage.input_tokens > 0 && got.usage.output_tokens > 0, 'usage present');
	// The output file is the batch's tenant's: the gateway recorded it from the batch.
	const output = await whenRecorded(() => c.files.content(got.output_file_id));
	const results = (await output.text()).trim().split('\n').map((l) => JSON.parse(l));
	assert.deepEqual(results.map((r) => r.custom_id).sort(), ['req-1', 'req-2']);
	assert.equal(results[0].response.status_code, 200);
	const listed = [];
	for await (const b of c.batches.list({ limit: 2 })) listed.push(b);
	const mine = listed.find((b) => b.id === batch.id);
	assert.ok(mine, 'the batch is listed');
	assert.equal(mine.status, 'completed', 'listed as last seen');
	const second = await c.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions',
		completion_window: '24h' });
	const cancelled = await whenRecorded(() => c.batches.cancel(second.id));
	assert.equal(cancelled.status, 'cancelling');
	await assert.rejects(c.batches.retrieve('batch_doesnotexist'), (e) => e.status === 404);
});
