// The official OpenAI Node SDK's moderations client against the gateway
// (docs/catalogue.md, service type `moderations`). Configuration (environment):
// JAIROUTER_URL, JAIROUTER_API_KEY, JAIROUTER_MODEL (a model with the moderations
// service; the sdk suite's model has it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const BASE = (process.env.JAIROUTER_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const KEY = process.env.JAIROUTER_API_KEY;
const MODEL = process.env.JAIROUTER_MODEL || 'demo-model';

if (!KEY) {
	throw new Error('JAIROUTER_API_KEY must be set to a valid gateway key');
}

const client = new OpenAI({ apiKey: KEY, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: 30000 });

test('moderations.create: one result per input, with categories and scores', async () => {
	const { data, response } = await client.moderations
		.create({ model: MODEL, input: ['a harmless sentence', 'mock-flag this one'] })
		.withResponse();
	assert.equal(response.status, 200);
	assert.ok(response.headers.get('x-request-id'), 'x-request-id present');
	assert.equal(data.model, MODEL);
	assert.equal(data.results.length, 2);
	assert.equal(data.results[0].flagged, false);
	assert.equal(data.results[1].flagged, true);
	assert.equal(typeof data.results[1].category_scores.violence, 'number');
});

test('moderations.create without a model: BadRequestError (the gateway routes by model)', async () => {
	await assert.rejects(client.moderations.create({ input: 'text' }), (e) => {
		assert.ok(e instanceof OpenAI.BadRequestError, `BadRequestError, got ${e && e.constructor.name}`);
		assert.equal(e.code, 'missing_model');
		return true;
	});
});
