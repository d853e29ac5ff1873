// The official OpenAI Node SDK's Realtime client (OpenAIRealtimeWS, over the `ws`
// package) against the gateway's GET /v1/realtime (docs/api.md, "Realtime").
// Configuration (environment): JAIROUTER_URL, JAIROUTER_API_KEY, JAIROUTER_MODEL (a model
// with the realtime service on an OpenAI-compatible backend with an endpoint row; the
// sdk suite's model has both).
//
// The SDK always dials wss://: against a plain-HTTP gateway (the sdk suite's stack) the
// socket is opened in clear through ws' own createConnection option, which the SDK
// passes on; over TLS (sdk-operator) nothing is changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { OpenAIRealtimeWS as BetaRealtimeWS } from 'openai/beta/realtime/ws';

const BASE = (process.env.JAIROUTER_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const KEY = process.env.JAIROUTER_API_KEY;
const MODEL = process.env.JAIROUTER_MODEL || 'demo-model';

if (!KEY) {
	throw new Error('JAIROUTER_API_KEY must be set to a valid gateway key');
}

const clear = BASE.startsWith('http://');
const options = clear ? { createConnection: (o) => net.connect({ host: o.host, port: o.port }) } : {};

function connect(apiKey, model, Client = OpenAIRealtimeWS) {
	const client = new OpenAI({ apiKey, baseURL: `${BASE}/v1`, maxRetries: 0 });
	return new Client({ model, options }, client);
}

// Resolves with the events up to the first response.done, or rejects on an error event.
function converse(rt) {
	return new Promise((resolve, reject) => {
		const events = [];
		rt.on('error', reject);
		rt.on('event', (ev) => {
			events.push(ev);
			if (ev.type === 'session.created') {
				rt.send({ type: 'conversation.item.create',
					item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello from the SDK' }] } });
				rt.send({ type: 'response.create' });
			}
			if (ev.type === 'response.done') resolve(events);
		});
	});
}

test('OpenAIRealtimeWS: a session through the gateway streams a response with its usage', async () => {
	const rt = connect(KEY, MODEL);
	const events = await converse(rt);
	const closed = new Promise((resolve) => rt.socket.on('close', (code) => resolve(code)));
	rt.close();
	assert.equal(await closed, 1000);
	assert.equal(events[0].type, 'session.created');
	const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
	const done = events.at(-1);
	assert.equal(done.type, 'response.done');
	assert.equal(done.response.status, 'completed');
	assert.equal(deltas, done.response.output[0].content[0].text);
	assert.equal(done.response.usage.output_tokens, deltas.split(' ').length);
	assert.ok(done.response.usage.input_tokens > 0);
	assert.equal(rt.socket.extensions, '', 'no compression negotiated through the gateway');
});

test('the beta client (openai/beta/realtime/ws, OpenAI-Beta: realtime=v1) through the gateway', async () => {
	const rt = connect(KEY, MODEL, BetaRealtimeWS);
	const events = await converse(rt);
	rt.close();
	const done = events.at(-1);
	assert.equal(done.type, 'response.done');
	assert.ok(done.response.usage.output_tokens > 0);
});

test('OpenAIRealtimeWS with a wrong key: the upgrade is refused (401) and the SDK reports an error', async () => {
	const rt = connect('jr-' + '0'.repeat(64), MODEL);
	const err = await new Promise((resolve) => rt.on('error', resolve));
	assert.match(err.message, /401/);
});

test('OpenAIRealtimeWS with an unknown model: the upgrade is refused (404)', async () => {
	const rt = connect(KEY, 'no-such-realtime-model');
	const err = await new Promise((resolve) => rt.on('error', resolve));
	assert.match(err.message, /404/);
});
