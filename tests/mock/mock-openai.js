#!/usr/bin/env node
// Mock model server speaking OpenAI's wire format. It stands in for the
// "model server" behind HAProxy in the demo, the integration tests and the
// benchmark. Node.js 20, no npm dependencies.
//
//   node tests/mock/mock-openai.js --port N [--host 127.0.0.1] [--name NAME]
//        [--chunk-delay-ms MS] [--require-key KEY] [--models a,b,c]
//
//   --port 0 lets the kernel choose; once listening, one line
//   "LISTENING <port>" is printed on stdout.
//   --require-key KEY   accept only this key (Authorization: Bearer KEY or
//                       x-api-key: KEY); anything else is a 401
//                       authentication_error. Off by default.
//   --models a,b        the models that exist: others get 404
//                       model_not_found. Off by default (any model answers);
//                       also the list returned by GET /v1/models.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions (both also
// streamed), POST /v1/embeddings, POST /v1/rerank (Cohere/Jina style),
// POST /v1/audio/speech (binary audio/mpeg), POST /v1/audio/transcriptions and
// POST /v1/images/edits (multipart/form-data), POST /v1/images/generations,
// POST /v1/moderations, GET /v1/models, GET /v1/models/{id}, GET /health; the Responses API (POST
// /v1/responses, also streamed; GET and DELETE /v1/responses/{id}; GET
// /v1/responses/{id}/input_items) in tests/mock/mock-responses.js; the Files and Batch
// APIs (/v1/files..., /v1/batches...) in tests/mock/mock-files.js.
//
// Test hooks (request headers):
//   x-mock-status: N     answer with status N (400..599) and an OpenAI error body
//   x-mock-delay-ms: N   wait N ms (at most 600000) before answering
//   x-mock-garbage: any  answer bytes that are not HTTP, then close
//   "CHUNKS:N" in the last message (chat): a reply of N one-word tokens (benchmarks)
//   x-mock-no-usage: any a stream never carries a usage chunk, even when asked for
//                        (a provider that sends no usage in streams)
// Usage reported (accounting tests): GET /_mock/usage returns
//   {"answers": N, "prompt_tokens": N, "completion_tokens": N}, the sums of every usage
//   object this server sent (JSON answers and streams' usage chunks) of chat and
//   completions; DELETE /_mock/usage sets them to zero.
// Server-wide behaviour (load-balancing tests), set at run time by
//   PUT /_mock/behaviour {"status": N|null, "delay_ms": N}
// applies to every API request (not /health) until set again; the request headers
// above still win. GET /_mock/behaviour returns it.
//
// Diagnostic response headers, on every answer:
//   x-mock-server              the --name of this server
//   x-mock-saw-authorization   present|absent (the value is never echoed)
//   x-mock-saw-x-api-key       present|absent
//   x-mock-authorization-sha256, x-mock-x-api-key-sha256, x-mock-api-key-sha256
//                              hex SHA-256 of that request header when present (proves
//                              which credential arrived without echoing it)
//   x-mock-request-id          the x-request-id request header, or empty
//   x-mock-body-sha256         hex SHA-256 of the raw request body
//   x-mock-model               the model the request named (JSON or form field), when any
//   x-mock-header-names        every request header name received, lower case, sorted,
//                              comma-separated (values never echoed)
//   x-mock-x-forwarded-for     the X-Forwarded-For request header(s) as received, or empty
//
// Determinism: the reply text depends only on the server name and the
// request; token counts are ceil(characters / 4) for prompts and one token
// per word (with its leading space) for replies.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');

const MAX_BODY = 32 * 1024 * 1024;
const MAX_DELAY_MS = 600000;

function usage(msg) {
	if (msg) process.stderr.write(`mock-openai: ${msg}\n`);
	process.stderr.write(
		'usage: node mock-openai.js --port N [--host 127.0.0.1] [--name NAME]\n' +
			'       [--chunk-delay-ms MS] [--require-key KEY] [--models a,b]\n',
	);
	process.exit(2);
}

function parseArgs(argv) {
	const opts = {
		port: null,
		host: '127.0.0.1',
		name: 'mock',
		chunkDelayMs: 0,
		requireKey: null,
		models: null,
	};
	for (let i = 0; i < argv.length; i++) {
		let arg = argv[i];
		let val;
		const eq = arg.indexOf('=');
		if (arg.startsWith('--') && eq > 0) {
			val = arg.slice(eq + 1);
			arg = arg.slice(0, eq);
		}
		const next = () => {
			if (val !== undefined) return val;
			if (i + 1 >= argv.length) usage(`${arg} needs a value`);
			return argv[++i];
		};
		switch (arg) {
			case '--port': {
				const v = next();
				if (!/^\d+$/.test(v) || Number(v) > 65535) usage(`bad port: ${v}`);
				opts.port = Number(v);
				break;
			}
			case '--host':
				opts.host = next();
				break;
			case '--name':
				opts.name = next();
				break;
			case '--chunk-delay-ms': {
				const v = next();
				if (!/^\d+$/.test(v)) usage(`bad --chunk-delay-ms: ${v}`);
				opts.chunkDelayMs = Number(v);
				break;
			}
			case '--require-key':
				opts.requireKey = next();
				break;
			case '--models':
				opts.models = next()
					.split(',')
					.map((s) => s.trim())
					.filter(Boolean);
				break;
			case '-h':
			case '--help':
				usage();
				break;
			default:
				usage(`unknown argument: ${arg}`);
		}
	}
	if (opts.port === null) usage('--port is required');
	if (!/^[\x21-\x7e]+$/.test(opts.name)) usage('--name must be printable ASCII without spaces');
	return opts;
}

const opts = parseArgs(process.argv.slice(2));
const NAME = opts.name;
const MODEL_SET = opts.models ? new Set(opts.models) : null;
const STARTED = Math.floor(Date.now() / 1000);

// Unique ids without a syscall per request: a random process prefix + counter.
const ID_PREFIX = crypto.randomBytes(6).toString('hex');
let idCounter = 0;
function newId(prefix) {
	idCounter++;
	return `${prefix}${ID_PREFIX}${idCounter.toString(36).padStart(6, '0')}`;
}

// ---------------------------------------------------------------- errors

function errorBody(message, type, param = null, code = null) {
	return JSON.stringify({ error: { message, type, param, code } });
}

function typeForStatus(status) {
	if (status === 401) return 'authentication_error';
	if (status === 403) return 'permission_error';
	if (status === 429) return 'rate_limit_error';
	if (status >= 500) return 'server_error';
	return 'invalid_request_error';
}

const HOOK_MESSAGES = {
	400: 'Bad request (x-mock-status).',
	401: 'Incorrect API key provided (x-mock-status).',
	403: 'You are not allowed to sample from this model (x-mock-status).',
	404: 'The model does not exist or you do not have access to it (x-mock-status).',
	429: 'Rate limit reached (x-mock-status).',
	500: 'The server had an error while processing your request. Sorry about that! (x-mock-status)',
	502: 'Bad gateway (x-mock-status).',
	503: 'The engine is currently overloaded, please try again later. (x-mock-status)',
};

function hookError(status) {
	const type = typeForStatus(status);
	const code = status === 429 ? 'rate_limit_exceeded' : null;
	return errorBody(HOOK_MESSAGES[status] || `Mock error ${status} (x-mock-status).`, type, null, code);
}

// ---------------------------------------------------------------- tokens

// The reply is split into tokens: each word with its leading space.
function tokenize(text) {
	return text.match(/\s*\S+/g) || [];
}

function textTokens(s) {
	return Math.ceil(s.length / 4);
}

// Characters of the text of a message "content": a string, or an array of
// parts of which text parts count.
function contentChars(content) {
	if (typeof content === 'string') return content.length;
	if (Array.isArray(content)) {
		let n = 0;
		for (const part of content) {
			if (typeof part === 'string') n += part.length;
			else if (part && typeof part.text === 'string') n += part.text.length;
		}
		return n;
	}
	return 0;
}

function usageObj(prompt, completion) {
	return {
		prompt_tokens: prompt,
		completion_tokens: completion,
		total_tokens: prompt + completion,
		prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
		completion_tokens_details: {
			reasoning_tokens: 0,
			audio_tokens: 0,
			accepted_prediction_tokens: 0,
			rejected_prediction_tokens: 0,
		},
	};
}

// max_tokens / max_completion_tokens: absent, or an integer >= 1.
function tokenLimit(body) {
	for (const param of ['max_completion_tokens', 'max_tokens']) {
		const v = body[param];
		if (v === undefined || v === null) continue;
		if (!Number.isInteger(v)) {
			return { error: [`Invalid type for '${param}': expected an integer.`, param, 'invalid_type'] };
		}
		if (v < 1) {
			return {
				error: [
					`Invalid '${param}': integer below minimum value. Expected a value >= 1, but got ${v} instead.`,
					param,
					'integer_below_min_value',
				],
			};
		}
		return { limit: v };
	}
	return { limit: Infinity };
}

// Test hook (benchmarks): a last message whose text holds "CHUNKS:N" (N <= 100000) gets
// a reply of N one-word tokens, "w0 w1 ...", so a stream has N content chunks.
function chunksHook(messages) {
	const last = messages[messages.length - 1];
	const m = last && typeof last.content === 'string' ? /CHUNKS:(\d+)/.exec(last.content) : null;
	if (!m) return null;
	const n = Math.min(Number(m[1]), 100000);
	return Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
}

// The deterministic reply and how it is cut by the token limit.
function makeReply(text, limit) {
	const tokens = tokenize(text);
	if (tokens.length > limit) {
		const kept = tokens.slice(0, limit);
		return { tokens: kept, text: kept.join(''), finish: 'length' };
	}
	return { tokens, text, finish: 'stop' };
}

// ---------------------------------------------------------------- handlers

function sendJson(res, status, bodyStr) {
	res.writeHead(status, {
		'content-type': 'application/json',
		'content-length': Buffer.byteLength(bodyStr),
	});
	res.end(bodyStr);
}

function sendError(res, status, message, type, param = null, code = null) {
	sendJson(res, status, errorBody(message, type, param, code));
}

function checkModel(res, body) {
	const model = body.model;
	if (model === undefined || model === null || model === '') {
		sendError(
			res,
			400,
			'you must provide a model parameter',
			'invalid_request_error',
			null,
			null,
		);
		return null;
	}
	if (typeof model !== 'string') {
		sendError(res, 400, "Invalid type for 'model': expected a string.", 'invalid_request_error', 'model', 'invalid_type');
		return null;
	}
	if (MODEL_SET && !MODEL_SET.has(model)) {
		sendError(
			res,
			404,
			`The model \`${model}\` does not exist or you do not have access to it.`,
			'invalid_request_error',
			null,
			'model_not_found',
		);
		return null;
	}
	return model;
}

function sseHeaders(res) {
	res.writeHead(200, {
		'content-type': 'text/event-stream; charset=utf-8',
		'cache-control': 'no-cache',
	});
}

// Writes each event with its own write(), optionally spaced by --chunk-delay-ms.
function streamEvents(res, events) {
	const delay = opts.chunkDelayMs;
	if (delay <= 0) {
		for (const e of events) res.write(`data: ${e}\n\n`);
		res.end();
		return;
	}
	let i = 0;
	const step = () => {
		if (res.destroyed || res.writableEnded) return;
		if (i >= events.length) {
			res.end();
			return;
		}
		res.write(`data: ${events[i++]}\n\n`);
		setTimeout(step, delay);
	};
	step();
}

function wantsUsage(req, body) {
	return req.headers['x-mock-no-usage'] === undefined &&
		!!(body.stream_options && typeof body.stream_options === 'object' && body.stream_options.include_usage === true);
}

// The sums of the usage objects sent (GET /_mock/usage).
const reported = { answers: 0, prompt_tokens: 0, completion_tokens: 0 };

function tally(u) {
	reported.answers++;
	reported.prompt_tokens += u.prompt_tokens;
	reported.completion_tokens += u.completion_tokens;
}

function chatCompletions(req, res, body) {
	const model = checkModel(res, body);
	if (model === null) return;
	if (!Array.isArray(body.messages)) {
		sendError(
			res,
			400,
			"Missing required parameter: 'messages'.",
			'invalid_request_error',
			'messages',
			'missing_required_parameter',
		);
		return;
	}
	if (body.messages.length === 0) {
		sendError(
			res,
			400,
			"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
			'invalid_request_error',
			'messages',
			'empty_array',
		);
		return;
	}
	const lim = tokenLimit(body);
	if (lim.error) return sendError(res, 400, lim.error[0], 'invalid_request_error', lim.error[1], lim.error[2]);

	let chars = 0;
	for (const m of body.messages) if (m && typeof m === 'object') chars += contentChars(m.content);
	const promptTokens = Math.ceil(chars / 4);
	const full = chunksHook(body.messages) ||
		`Hello from ${NAME}! This is a mock reply from model ${model} to ${body.messages.length} message(s).`;
	const reply = makeReply(full, lim.limit);
	const id = newId('chatcmpl-');
	const created = Math.floor(Date.now() / 1000);
	const usage = usageObj(promptTokens, reply.tokens.length);

	if (body.stream !== true) {
		tally(usage);
		sendJson(
			res,
			200,
			JSON.stringify({
				id,
				object: 'chat.completion',
				created,
				model,
				choices: [
					{
						index: 0,
						message: { role: 'assistant', content: reply.text, refusal: null, annotations: [] },
						logprobs: null,
						finish_reason: reply.finish,
					},
				],
				usage,
				service_tier: 'default',
				system_fingerprint: 'fp_mock',
			}),
		);
		return;
	}

	const withUsage = wantsUsage(req, body);
	if (withUsage) tally(usage);
	const chunk = (delta, finish) => {
		const o = {
			id,
			object: 'chat.completion.chunk',
			created,
			model,
			service_tier: 'default',
			system_fingerprint: 'fp_mock',
			choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
		};
		if (withUsage) o.usage = null;
		return JSON.stringify(o);
	};
	const events = [chunk({ role: 'assistant', content: '', refusal: null }, null)];
	for (const t of reply.tokens) events.push(chunk({ content: t }, null));
	events.push(chunk({}, reply.finish));
	if (withUsage) {
		events.push(
			JSON.stringify({
				id,
				object: 'chat.completion.chunk',
				created,
				model,
				service_tier: 'default',
				system_fingerprint: 'fp_mock',
				choices: [],
				usage,
			}),
		);
	}
	events.push('[DONE]');
	sseHeaders(res);
	streamEvents(res, events);
}

// prompt: string | string[] | number[] | number[][] -> token count or null.
function promptTokensOf(prompt) {
	if (typeof prompt === 'string') return textTokens(prompt);
	if (Array.isArray(prompt)) {
		if (prompt.length === 0) return null;
		if (prompt.every((p) => typeof p === 'string')) return prompt.reduce((n, p) => n + textTokens(p), 0);
		if (prompt.every((p) => Number.isInteger(p))) return prompt.length;
		if (prompt.every((p) => Array.isArray(p) && p.every(Number.isInteger))) {
			return prompt.reduce((n, p) => n + p.length, 0);
		}
	}
	return null;
}

function completions(req, res, body) {
	const model = checkModel(res, body);
	if (model === null) return;
	if (body.prompt === undefined || body.prompt === null) {
		sendError(res, 400, "Missing required parameter: 'prompt'.", 'invalid_request_error', 'prompt', 'missing_required_parameter');
		return;
	}
	const promptTokens = promptTokensOf(body.prompt);
	if (promptTokens === null) {
		sendError(res, 400, "Invalid value for 'prompt'.", 'invalid_request_error', 'prompt', 'invalid_value');
		return;
	}
	const lim = tokenLimit(body);
	if (lim.error) return sendError(res, 400, lim.error[0], 'invalid_request_error', lim.error[1], lim.error[2]);

	const full = ` Hello from ${NAME}! This is a mock completion from model ${model}.`;
	const reply = makeReply(full, lim.limit);
	const id = newId('cmpl-');
	const created = Math.floor(Date.now() / 1000);
	const u = {
		prompt_tokens: promptTokens,
		completion_tokens: reply.tokens.length,
		total_tokens: promptTokens + reply.tokens.length,
	};

	if (body.stream !== true) {
		tally(u);
		sendJson(
			res,
			200,
			JSON.stringify({
				id,
				object: 'text_completion',
				created,
				model,
				system_fingerprint: 'fp_mock',
				choices: [{ text: reply.text, index: 0, logprobs: null, finish_reason: reply.finish }],
				usage: u,
			}),
		);
		return;
	}

	const withUsage = wantsUsage(req, body);
	if (withUsage) tally(u);
	const chunk = (text, finish) => {
		const o = {
			id,
			object: 'text_completion',
			created,
			model,
			system_fingerprint: 'fp_mock',
			choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
		};
		if (withUsage) o.usage = null;
		return JSON.stringify(o);
	};
	const events = [];
	for (const t of reply.tokens) events.push(chunk(t, null));
	events.push(chunk('', reply.finish));
	if (withUsage) {
		events.push(
			JSON.stringify({ id, object: 'text_completion', created, model, system_fingerprint: 'fp_mock', choices: [], usage: u }),
		);
	}
	events.push('[DONE]');
	sseHeaders(res);
	streamEvents(res, events);
}

// A deterministic unit vector of `dim` float32 values for one input.
function embed(input, dim) {
	const seed = typeof input === 'string' ? input : JSON.stringify(input);
	const v = new Float32Array(dim);
	let block = Buffer.alloc(0);
	let counter = 0;
	let norm = 0;
	for (let i = 0; i < dim; i++) {
		const off = (i * 4) % 32;
		if (off === 0) block = crypto.createHash('sha256').update(`${counter++}\0${seed}`).digest();
		const x = block.readUInt32LE(off) / 0xffffffff;
		v[i] = x * 2 - 1;
		norm += v[i] * v[i];
	}
	norm = Math.sqrt(norm) || 1;
	for (let i = 0; i < dim; i++) v[i] = v[i] / norm;
	return v;
}

function embeddings(req, res, body) {
	const model = checkModel(res, body);
	if (model === null) return;
	let input = body.input;
	if (input === undefined || input === null) {
		sendError(res, 400, "Missing required parameter: 'input'.", 'invalid_request_error', 'input', 'missing_required_parameter');
		return;
	}
	// string | string[] | number[] (one tokenised input) | number[][]
	let items;
	if (typeof input === 'string') items = [input];
	else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string')) items = input;
	else if (Array.isArray(input) && input.length > 0 && input.every(Number.isInteger)) items = [input];
	else if (
		Array.isArray(input) &&
		input.length > 0 &&
		input.every((x) => Array.isArray(x) && x.length > 0 && x.every(Number.isInteger))
	)
		items = input;
	else {
		sendError(res, 400, "Invalid value for 'input': expected a non-empty string or array.", 'invalid_request_error', 'input', 'invalid_value');
		return;
	}
	if (items.some((x) => typeof x === 'string' && x.length === 0)) {
		sendError(res, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'invalid_request_error', null, null);
		return;
	}
	let dim = 8;
	if (body.dimensions !== undefined && body.dimensions !== null) {
		if (!Number.isInteger(body.dimensions) || body.dimensions < 1 || body.dimensions > 4096) {
			sendError(res, 400, "Invalid 'dimensions': expected an integer between 1 and 4096.", 'invalid_request_error', 'dimensions', 'invalid_value');
			return;
		}
		dim = body.dimensions;
	}
	const fmt = body.encoding_format === undefined || body.encoding_format === null ? 'float' : body.encoding_format;
	if (fmt !== 'float' && fmt !== 'base64') {
		sendError(
			res,
			400,
			`Invalid value for 'encoding_format': '${String(fmt)}'. Expected 'float' or 'base64'.`,
			'invalid_request_error',
			'encoding_format',
			'invalid_value',
		);
		return;
	}
	let promptTokens = 0;
	const data = items.map((item, index) => {
		promptTokens += typeof item === 'string' ? textTokens(item) : item.length;
		const v = embed(item, dim);
		const embedding = fmt === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
		return { object: 'embedding', index, embedding };
	});
	sendJson(
		res,
		200,
		JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } }),
	);
}

function modelObj(id) {
	return { id, object: 'model', created: STARTED, owned_by: 'jairouter-mock' };
}

function listModels(req, res) {
	const ids = opts.models || ['demo-model'];
	sendJson(res, 200, JSON.stringify({ object: 'list', data: ids.map(modelObj) }));
}

function getModel(req, res, id) {
	if (MODEL_SET && !MODEL_SET.has(id)) {
		sendError(
			res,
			404,
			`The model '${id}' does not exist`,
			'invalid_request_error',
			'model',
			'model_not_found',
		);
		return;
	}
	sendJson(res, 200, JSON.stringify(modelObj(id)));
}

function rerank(req, res, body) {
	const model = checkModel(res, body);
	if (model === null) return;
	const docs = body.documents;
	if (typeof body.query !== 'string' || !Array.isArray(docs) || docs.length === 0) {
		sendError(res, 400, "'query' (a string) and 'documents' (a non-empty array) are required.", 'invalid_request_error', null, 'invalid_value');
		return;
	}
	const text = (d) => (typeof d === 'string' ? d : d && typeof d.text === 'string' ? d.text : JSON.stringify(d));
	const words_of = (t) => t.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
	const q = new Set(words_of(body.query));
	const results = docs.map((d, index) => {
		const words = words_of(text(d));
		const hits = words.filter((w) => q.has(w)).length;
		return { index, relevance_score: words.length ? hits / words.length : 0 };
	});
	results.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
	const n = Number.isInteger(body.top_n) && body.top_n > 0 ? body.top_n : results.length;
	const tokens = textTokens(body.query) + docs.reduce((t, d) => t + textTokens(text(d)), 0);
	sendJson(res, 200, JSON.stringify({ id: newId('rerank-'), model, results: results.slice(0, n), usage: { total_tokens: tokens } }));
}

// A few bytes that look like an MPEG audio frame header, then the input's hash.
function audioSpeech(req, res, body) {
	const model = checkModel(res, body);
	if (model === null) return;
	if (typeof body.input !== 'string' || body.input === '') {
		sendError(res, 400, "Missing required parameter: 'input'.", 'invalid_request_error', 'input', 'missing_required_parameter');
		return;
	}
	const audio = Buffer.concat([
		Buffer.from([0xff, 0xfb, 0x90, 0x64]),
		crypto.createHash('sha256').update(`${NAME}\0${model}\0${body.voice}\0${body.input}`).digest(),
	]);
	res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': audio.length });
	res.end(audio);
}

function audioTranscriptions(req, res, form) {
	const model = checkModel(res, form.fields);
	if (model === null) return;
	const file = form.files.file;
	if (!file) {
		sendError(res, 400, "Missing required parameter: 'file'.", 'invalid_request_error', 'file', 'missing_required_parameter');
		return;
	}
	const text = `Transcribed ${file.data.length} bytes of ${file.filename || 'audio'} with ${model}.`;
	if (form.fields.response_format === 'text') {
		res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
		res.end(text);
		return;
	}
	sendJson(res, 200, JSON.stringify({ text }));
}

// One tiny transparent PNG, or a URL, per requested image.
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

function imagesAnswer(res, model, prompt, n, format) {
	if (typeof prompt !== 'string' || prompt === '') {
		sendError(res, 400, "Missing required parameter: 'prompt'.", 'invalid_request_error', 'prompt', 'missing_required_parameter');
		return;
	}
	const count = Number.isInteger(n) && n > 0 && n <= 10 ? n : 1;
	const data = [];
	for (let i = 0; i < count; i++)
		data.push(format === 'url' ? { url: `https://mock.invalid/${model}/${i}.png`, revised_prompt: prompt } : { b64_json: PNG_1X1, revised_prompt: prompt });
	sendJson(res, 200, JSON.stringify({ created: Math.floor(Date.now() / 1000), data }));
}

function imagesGenerations(req, res, body) {
	const model = checkModel(res, body);
	if (model === null) return;
	imagesAnswer(res, model, body.prompt, body.n, body.response_format);
}

function imagesEdits(req, res, form) {
	const model = checkModel(res, form.fields);
	if (model === null) return;
	if (!form.files.image && !form.files['image[]']) {
		sendError(res, 400, "Missing required parameter: 'image'.", 'invalid_request_error', 'image', 'missing_required_parameter');
		return;
	}
	imagesAnswer(res, model, form.fields.prompt, Number(form.fields.n || 1), form.fields.response_format);
}

// POST /v1/moderations (OpenAI's moderation object): input is a string or an array of
// strings; an input containing "mock-flag" is flagged for violence. No usage, as OpenAI.
const MOD_CATEGORIES = ['harassment', 'harassment/threatening', 'hate', 'hate/threatening', 'illicit',
	'illicit/violent', 'self-harm', 'self-harm/instructions', 'self-harm/intent', 'sexual', 'sexual/minors',
	'violence', 'violence/graphic'];

function moderations(req, res, body) {
	const model = body.model === undefined ? 'omni-moderation-latest' : checkModel(res, body);
	if (model === null) return;
	const input = typeof body.input === 'string' ? [body.input] : body.input;
	if (!Array.isArray(input) || input.length === 0 || !input.every((s) => typeof s === 'string')) {
		sendError(res, 400, "Invalid 'input': expected a string or an array of strings.", 'invalid_request_error', 'input', 'invalid_value');
		return;
	}
	const results = input.map((text) => {
		const flagged = text.includes('mock-flag');
		const categories = {}, scores = {}, applied = {};
		for (const c of MOD_CATEGORIES) {
			categories[c] = flagged && c === 'violence';
			scores[c] = categories[c] ? 0.97 : 0.0001;
			applied[c] = ['text'];
		}
		return { flagged, categories, category_scores: scores, category_applied_input_types: applied };
	});
	sendJson(res, 200, JSON.stringify({ id: newId('modr-'), model, results }));
}

const POST_ROUTES = {
	'/v1/chat/completions': chatCompletions,
	'/v1/completions': completions,
	'/v1/embeddings': embeddings,
	'/v1/rerank': rerank,
	'/v1/audio/speech': audioSpeech,
	'/v1/images/generations': imagesGenerations,
	'/v1/moderations': moderations,
};

// Routes whose request is multipart/form-data: handler(req, res, {fields, files}).
// The Responses API (tests/mock/mock-responses.js): route(req, res, path, method, body).
const responses = require('./mock-responses.js')({
	newId, sendJson, sendError, checkModel, makeReply, sseHeaders,
	name: NAME,
	chunkDelayMs: () => opts.chunkDelayMs,
});
// The Realtime API (tests/mock/mock-realtime.js): WebSocket upgrades of the server.
const realtime = require('./mock-realtime.js')({ newId, errorBody, authFailure: (req) => authFailure(req), name: NAME });
const isResponsesPath = (path) => path === '/v1/responses' || path.startsWith('/v1/responses/');

const filesApi = require('./mock-files.js')({ newId, sendJson, sendError, parseForm });
const isFilesPath = (path) => path === '/v1/files' || path.startsWith('/v1/files/') ||
	path === '/v1/batches' || path.startsWith('/v1/batches/');

const FORM_ROUTES = {
	'/v1/audio/transcriptions': audioTranscriptions,
	'/v1/images/edits': imagesEdits,
};

// A plain multipart/form-data reader (the mock trusts its client): null when malformed.
function parseForm(contentType, raw) {
	const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
	if (!/^multipart\/form-data/i.test(contentType || '') || !m) return null;
	const delim = Buffer.from(`--${m[1] || m[2]}`);
	const fields = {};
	const files = {};
	let pos = raw.indexOf(delim);
	if (pos !== 0) return null;
	for (;;) {
		pos += delim.length;
		if (raw.slice(pos, pos + 2).toString() === '--') return { fields, files };
		pos += 2;
		const hend = raw.indexOf('\r\n\r\n', pos);
		if (hend < 0) return null;
		const head = raw.slice(pos, hend).toString('utf8');
		const next = raw.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), hend + 4);
		if (next < 0) return null;
		const data = raw.slice(hend + 4, next);
		const name = /name="([^"]*)"/i.exec(head);
		const filename = /filename="([^"]*)"/i.exec(head);
		if (!name) return null;
		if (filename) files[name[1]] = { filename: filename[1], data };
		else fields[name[1]] = data.toString('utf8');
		pos = next + 2;
	}
}

// ---------------------------------------------------------------- dispatch

function bearer(h) {
	if (typeof h !== 'string') return null;
	const m = /^Bearer\s+(.+)$/i.exec(h.trim());
	return m ? m[1].trim() : null;
}

// null when authorised, else [status, message, code].
function authFailure(req) {
	if (opts.requireKey === null) return null;
	const auth = req.headers.authorization;
	const xkey = req.headers['x-api-key'];
	if (auth === undefined && xkey === undefined) {
		return [
			"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
			null,
		];
	}
	const key = auth !== undefined ? bearer(auth) : xkey;
	if (key !== opts.requireKey) return ['Incorrect API key provided.', 'invalid_api_key'];
	return null;
}

// The server-wide behaviour (PUT /_mock/behaviour).
const behaviour = { status: null, delay_ms: 0 };

function setBehaviour(res, raw) {
	let b;
	try {
		b = JSON.parse(raw.toString('utf8') || '{}');
	} catch {
		sendError(res, 400, 'The behaviour must be a JSON object.', 'invalid_request_error', null, null);
		return;
	}
	const st = b.status === undefined ? behaviour.status : b.status;
	const ms = b.delay_ms === undefined ? behaviour.delay_ms : Number(b.delay_ms);
	if ((st !== null && !(Number.isInteger(st) && st >= 400 && st <= 599)) ||
		!(Number.isInteger(ms) && ms >= 0 && ms <= MAX_DELAY_MS)) {
		sendError(res, 400, 'status: null or 400..599; delay_ms: 0..600000.', 'invalid_request_error', null, null);
		return;
	}
	behaviour.status = st;
	behaviour.delay_ms = ms;
	sendJson(res, 200, JSON.stringify(behaviour));
}

function handle(req, res, raw) {
	const path = req.url.split('?', 1)[0];
	const method = req.method;

	if (path === '/health' && (method === 'GET' || method === 'HEAD')) {
		res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
		res.end(method === 'HEAD' ? undefined : 'ok');
		return;
	}
	if (path === '/_mock/usage') {
		if (method === 'DELETE') Object.assign(reported, { answers: 0, prompt_tokens: 0, completion_tokens: 0 });
		sendJson(res, 200, JSON.stringify(reported));
		return;
	}
	if (path === '/_mock/realtime') {
		sendJson(res, 200, JSON.stringify(realtime.stats()));
		return;
	}
	if (path === '/_mock/behaviour') {
		if (method === 'PUT') setBehaviour(res, raw);
		else sendJson(res, 200, JSON.stringify(behaviour));
		return;
	}

	if (req.headers['x-mock-garbage'] !== undefined) {
		// Not HTTP at all: the proxy in front must answer 502 itself.
		req.socket.end('NOT HTTP AT ALL\r\n\r\n');
		return;
	}
	const hook = req.headers['x-mock-status'] !== undefined ? req.headers['x-mock-status'] :
		behaviour.status !== null ? String(behaviour.status) : undefined;
	if (hook !== undefined) {
		const st = Number(hook);
		if (Number.isInteger(st) && st >= 400 && st <= 599) {
			sendJson(res, st, hookError(st));
			return;
		}
	}

	const form = method === 'POST' ? FORM_ROUTES[path] : undefined;
	const post = method === 'POST' ? POST_ROUTES[path] || form : undefined;
	let get = null;
	if (method === 'GET') {
		if (path === '/v1/models') get = (rq, rs) => listModels(rq, rs);
		else if (path.startsWith('/v1/models/') && path.length > 11) {
			let id;
			try {
				id = decodeURIComponent(path.slice(11));
			} catch {
				id = path.slice(11);
			}
			get = (rq, rs) => getModel(rq, rs, id);
		}
	}
	if (isResponsesPath(path) && method !== 'POST') {
		const denied = authFailure(req);
		if (denied) return sendError(res, 401, denied[0], 'authentication_error', null, denied[1]);
		if (!responses(req, res, path, method, null))
			sendError(res, 404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, null);
		return;
	}
	if (isFilesPath(path)) {
		const denied = authFailure(req);
		if (denied) return sendError(res, 401, denied[0], 'authentication_error', null, denied[1]);
		if (!filesApi(req, res, path, method, raw))
			sendError(res, 404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, null);
		return;
	}
	const postResponses = path === '/v1/responses' && method === 'POST' ?
		(rq, rs, b) => responses(rq, rs, path, method, b) : undefined;
	if (!post && !get && !postResponses) {
		sendError(res, 404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, null);
		return;
	}

	const denied = authFailure(req);
	if (denied) {
		sendError(res, 401, denied[0], 'authentication_error', null, denied[1]);
		return;
	}

	if (get) return get(req, res);
	if (form) {
		const parsed = parseForm(req.headers['content-type'], raw);
		if (!parsed) {
			sendError(res, 400, 'Could not parse the multipart/form-data body.', 'invalid_request_error', null, null);
			return;
		}
		if (typeof parsed.fields.model === 'string') res.setHeader('x-mock-model', parsed.fields.model);
		form(req, res, parsed);
		return;
	}

	let body;
	try {
		body = JSON.parse(raw.toString('utf8'));
	} catch {
		sendError(
			res,
			400,
			"We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
			'invalid_request_error',
			null,
			null,
		);
		return;
	}
	if (body === null || typeof body !== 'object' || Array.isArray(body)) {
		sendError(res, 400, 'The request body must be a JSON object.', 'invalid_request_error', null, null);
		return;
	}
	if (typeof body.model === 'string') res.setHeader('x-mock-model', body.model);
	(post || postResponses)(req, res, body);
}

const server = http.createServer((req, res) => {
	const parts = [];
	let size = 0;
	let tooBig = false;
	req.on('data', (c) => {
		if (tooBig) return;
		size += c.length;
		if (size > MAX_BODY) {
			tooBig = true;
			return;
		}
		parts.push(c);
	});
	req.on('error', () => {});
	req.on('end', () => {
		const raw = parts.length === 1 ? parts[0] : Buffer.concat(parts);
		const rid = req.headers['x-request-id'];
		const ridStr = typeof rid === 'string' ? rid : '';
		res.setHeader('x-mock-server', NAME);
		res.setHeader('x-mock-saw-authorization', req.headers.authorization !== undefined ? 'present' : 'absent');
		res.setHeader('x-mock-saw-x-api-key', req.headers['x-api-key'] !== undefined ? 'present' : 'absent');
		for (const h of ['authorization', 'x-api-key', 'api-key'])
			if (typeof req.headers[h] === 'string')
				res.setHeader(`x-mock-${h}-sha256`, crypto.createHash('sha256').update(req.headers[h]).digest('hex'));
		res.setHeader('x-mock-request-id', ridStr);
		res.setHeader('x-mock-header-names', [...new Set(Object.keys(req.headersDistinct || req.headers))].sort().join(','));
		const xff = req.headersDistinct ? req.headersDistinct['x-forwarded-for'] : undefined;
		res.setHeader('x-mock-x-forwarded-for', xff ? xff.join(', ') : '');
		res.setHeader('x-mock-body-sha256', crypto.createHash('sha256').update(raw).digest('hex'));
		// Like OpenAI, every answer carries a request id: the caller's, or a new one.
		res.setHeader('x-request-id', ridStr || newId('req_'));

		const answer = () => {
			if (res.destroyed) return;
			try {
				if (tooBig) {
					sendError(res, 413, `Request body too large (limit ${MAX_BODY} bytes).`, 'invalid_request_error', null, 'request_too_large');
				} else {
					handle(req, res, raw);
				}
			} catch (e) {
				process.stderr.write(`mock-openai: internal error: ${e && e.stack ? e.stack : e}\n`);
				if (!res.headersSent) sendError(res, 500, 'Internal mock error.', 'server_error', null, null);
				else res.destroy();
			}
		};
		const d = req.headers['x-mock-delay-ms'];
		const path = req.url.split('?', 1)[0];
		const dflt = path === '/health' || path === '/_mock/behaviour' || path === '/_mock/usage' ? 0 : behaviour.delay_ms;
		const ms = d === undefined ? dflt : Math.min(Math.max(Number(d) || 0, 0), MAX_DELAY_MS);
		if (ms > 0) setTimeout(answer, ms);
		else answer();
	});
});

// Idle upstream connections are reused by HAProxy: keep them well beyond its
// idle pool lifetime so a reused connection is not closed under a request.
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.requestTimeout = 0;

server.on('upgrade', (req, socket) => realtime.upgrade(req, socket));

server.on('clientError', (err, socket) => {
	if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
	else socket.destroy();
});

server.on('error', (err) => {
	process.stderr.write(`mock-openai: ${err.message}\n`);
	process.exit(1);
});

server.listen(opts.port, opts.host, () => {
	process.stdout.write(`LISTENING ${server.address().port}\n`);
});

function shutdown() {
	server.close(() => process.exit(0));
	if (server.closeIdleConnections) server.closeIdleConnections();
	setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
