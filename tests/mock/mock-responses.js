// The Responses API of tests/mock/mock-openai.js, following OpenAI's API reference
// ("Responses": create, retrieve, delete, list input items; "Streaming responses": the
// typed server-sent events, each "event: <type>" then "data: <json>", numbered by
// sequence_number, with no [DONE] at the end).
//
//   POST   /v1/responses                     create (stream: true for events)
//   GET    /v1/responses/{id}                retrieve a stored response
//   DELETE /v1/responses/{id}                delete it
//   GET    /v1/responses/{id}/input_items    the input items it was created from
//
// Responses are stored (unless "store": false) in memory, at most STORE_MAX (the
// oldest goes first); previous_response_id must name a stored one. Token counts: as
// for chat, ceil(characters / 4) for the input and one token per word of the reply.
'use strict';

const STORE_MAX = 10000;

module.exports = function responsesApi(h) {
	const store = new Map(); // id -> { response, items }

	function remember(id, entry) {
		if (store.size >= STORE_MAX) store.delete(store.keys().next().value);
		store.set(id, entry);
	}

	// input: a string, or an array of items (messages with string or part content).
	function inputItems(input) {
		if (typeof input === 'string') {
			return [{ id: h.newId('msg_'), type: 'message', role: 'user', status: 'completed',
				content: [{ type: 'input_text', text: input }] }];
		}
		if (!Array.isArray(input) || input.length === 0) return null;
		const items = [];
		for (const it of input) {
			if (!it || typeof it !== 'object') return null;
			const content = typeof it.content === 'string' ? [{ type: 'input_text', text: it.content }] : it.content;
			if (!Array.isArray(content)) return null;
			items.push({ id: h.newId('msg_'), type: 'message', role: it.role || 'user', status: 'completed', content });
		}
		return items;
	}

	function inputChars(items) {
		let n = 0;
		for (const it of items)
			for (const p of it.content) if (p && typeof p.text === 'string') n += p.text.length;
		return n;
	}

	function outputLimit(body, res) {
		const v = body.max_output_tokens;
		if (v === undefined || v === null) return Infinity;
		if (!Number.isInteger(v) || v < 1) {
			h.sendError(res, 400, "Invalid 'max_output_tokens': expected an integer >= 1.", 'invalid_request_error',
				'max_output_tokens', 'invalid_value');
			return null;
		}
		return v;
	}

	function responseObject(id, body, model, status, output, usage) {
		return {
			id,
			object: 'response',
			created_at: Math.floor(Date.now() / 1000),
			status,
			background: false,
			error: null,
			incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
			instructions: typeof body.instructions === 'string' ? body.instructions : null,
			max_output_tokens: Number.isInteger(body.max_output_tokens) ? body.max_output_tokens : null,
			model,
			output,
			parallel_tool_calls: true,
			previous_response_id: body.previous_response_id || null,
			reasoning: { effort: null, summary: null },
			store: body.store !== false,
			temperature: typeof body.temperature === 'number' ? body.temperature : 1.0,
			text: { format: { type: 'text' } },
			tool_choice: 'auto',
			tools: [],
			top_p: 1.0,
			truncation: 'disabled',
			usage,
			user: null,
			metadata: body.metadata && typeof body.metadata === 'object' ? body.metadata : {},
		};
	}

	function usageOf(input, output) {
		return {
			input_tokens: input,
			input_tokens_details: { cached_tokens: 0 },
			output_tokens: output,
			output_tokens_details: { reasoning_tokens: 0 },
			total_tokens: input + output,
		};
	}

	function message(id, status, text) {
		return { id, type: 'message', status, role: 'assistant',
			content: text === null ? [] : [{ type: 'output_text', text, annotations: [] }] };
	}

	// The event sequence of a streamed text answer.
	function events(final, msgId, tokens, text) {
		const inProgress = { ...final, status: 'in_progress', output: [], usage: null, incomplete_details: null };
		const part = { type: 'output_text', text: '', annotations: [] };
		const loc = { item_id: msgId, output_index: 0, content_index: 0 };
		const ev = [
			{ type: 'response.created', response: inProgress },
			{ type: 'response.in_progress', response: inProgress },
			{ type: 'response.output_item.added', output_index: 0, item: message(msgId, 'in_progress', null) },
			{ type: 'response.content_part.added', ...loc, part },
		];
		for (const t of tokens) ev.push({ type: 'response.output_text.delta', ...loc, delta: t, logprobs: [] });
		ev.push({ type: 'response.output_text.done', ...loc, text, logprobs: [] });
		ev.push({ type: 'response.content_part.done', ...loc, part: { ...part, text } });
		ev.push({ type: 'response.output_item.done', output_index: 0, item: final.output[0] });
		ev.push({ type: final.status === 'completed' ? 'response.completed' : 'response.incomplete', response: final });
		return ev.map((e, i) => ({ ...e, sequence_number: i }));
	}

	function writeEvents(res, evs) {
		h.sseHeaders(res);
		const delay = h.chunkDelayMs();
		const line = (e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
		if (delay <= 0) {
			for (const e of evs) res.write(line(e));
			res.end();
			return;
		}
		let i = 0;
		const step = () => {
			if (res.destroyed || res.writableEnded) return;
			if (i >= evs.length) return res.end();
			res.write(line(evs[i++]));
			setTimeout(step, delay);
		};
		step();
	}

	function create(req, res, body) {
		const model = h.checkModel(res, body);
		if (model === null) return;
		const items = inputItems(body.input);
		if (!items) {
			h.sendError(res, 400, "Invalid 'input': expected a string or a non-empty array of input items.",
				'invalid_request_error', 'input', 'invalid_value');
			return;
		}
		const prev = body.previous_response_id;
		if (prev !== undefined && prev !== null && !store.has(prev)) {
			h.sendError(res, 400, `Previous response with id '${prev}' not found.`, 'invalid_request_error',
				'previous_response_id', 'previous_response_not_found');
			return;
		}
		const limit = outputLimit(body, res);
		if (limit === null) return;
		const reply = h.makeReply(`Hello from ${h.name}! This is a mock response from model ${model} to ${items.length} input item(s).`, limit);
		const id = h.newId('resp_');
		const msgId = h.newId('msg_');
		const status = reply.finish === 'length' ? 'incomplete' : 'completed';
		const usage = usageOf(Math.ceil(inputChars(items) / 4), reply.tokens.length);
		const final = responseObject(id, body, model, status, [message(msgId, 'completed', reply.text)], usage);
		if (body.store !== false) remember(id, { response: final, items });
		if (body.stream === true) return writeEvents(res, events(final, msgId, reply.tokens, reply.text));
		h.sendJson(res, 200, JSON.stringify(final));
	}

	function notFound(res, id) {
		h.sendError(res, 404, `Response with id '${id}' not found.`, 'invalid_request_error', null, null);
	}

	// Handles /v1/responses and /v1/responses/...; false when the path is not one of them.
	return function route(req, res, path, method, body) {
		if (path === '/v1/responses') {
			if (method !== 'POST') return false;
			create(req, res, body);
			return true;
		}
		const m = /^\/v1\/responses\/([^/]+)(\/input_items)?$/.exec(path);
		if (!m || !(method === 'GET' || (method === 'DELETE' && !m[2]))) return false;
		const id = m[1];
		const entry = store.get(id);
		if (!entry) {
			notFound(res, id);
			return true;
		}
		if (method === 'DELETE') {
			store.delete(id);
			h.sendJson(res, 200, JSON.stringify({ id, object: 'response.deleted', deleted: true }));
		} else if (m[2]) {
			const data = entry.items;
			h.sendJson(res, 200, JSON.stringify({ object: 'list', data, first_id: data[0].id,
				last_id: data[data.length - 1].id, has_more: false }));
		} else {
			h.sendJson(res, 200, JSON.stringify(entry.response));
		}
		return true;
	};
};
