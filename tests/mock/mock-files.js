// The Files and Batch APIs of tests/mock/mock-openai.js, following OpenAI's API reference
// ("Files": upload, list, retrieve, content, delete; "Batch": create, retrieve, cancel,
// list; "The file object", "The batch object", "The request input object").
//
//   POST   /v1/files                  multipart/form-data: purpose and file
//   GET    /v1/files                  every file this server holds (all callers)
//   GET    /v1/files/{id}             the file object
//   GET    /v1/files/{id}/content     its bytes (application/octet-stream)
//   DELETE /v1/files/{id}             {"id", "object": "file", "deleted": true}
//   POST   /v1/batches                {"input_file_id", "endpoint", "completion_window"}
//   GET    /v1/batches                every batch (all callers), newest first
//   GET    /v1/batches/{id}           the batch; each retrieve moves it one step:
//                                     validating -> in_progress -> finalizing -> completed
//   POST   /v1/batches/{id}/cancel    cancelling (cancelled at the next retrieve)
//
// A batch that completes writes an output file (purpose batch_output) of one JSONL result
// per input line ({"id", "custom_id", "response": {"status_code": 200, "request_id",
// "body"}, "error": null}) and carries `usage`: per line, ceil(characters of the line's
// body / 4) input tokens and 6 output tokens. Batches whose input says "mock_no_usage"
// in a line complete without `usage` (as batches created before 2025-09-07 do).
// At most STORE_MAX files and batches are kept (the oldest goes first).
'use strict';

const STORE_MAX = 10000;
const OUTPUT_TOKENS = 6;
const STEPS = ['validating', 'in_progress', 'finalizing', 'completed'];

module.exports = function filesApi(h) {
	const files = new Map(); // id -> { file, data }
	const batches = new Map(); // id -> batch object
	const now = () => Math.floor(Date.now() / 1000);

	function remember(map, id, v) {
		if (map.size >= STORE_MAX) map.delete(map.keys().next().value);
		map.set(id, v);
	}

	function store(filename, purpose, data) {
		const file = { id: h.newId('file-'), object: 'file', bytes: data.length, created_at: now(),
			expires_at: null, filename, purpose, status: 'processed', status_details: null };
		remember(files, file.id, { file, data });
		return file;
	}

	function upload(req, res, raw) {
		const form = h.parseForm(req.headers['content-type'], raw);
		if (!form) return h.sendError(res, 400, 'Could not parse the multipart/form-data body.', 'invalid_request_error', null, null);
		if (typeof form.fields.purpose !== 'string')
			return h.sendError(res, 400, "Missing required parameter: 'purpose'.", 'invalid_request_error', 'purpose', 'missing_required_parameter');
		if (!form.files.file)
			return h.sendError(res, 400, "Missing required parameter: 'file'.", 'invalid_request_error', 'file', 'missing_required_parameter');
		h.sendJson(res, 200, JSON.stringify(store(form.files.file.filename, form.fields.purpose, form.files.file.data)));
	}

	function list(res, map, toObject) {
		const data = [...map.values()].map(toObject).reverse();
		h.sendJson(res, 200, JSON.stringify({ object: 'list', data, first_id: data.length ? data[0].id : null,
			last_id: data.length ? data[data.length - 1].id : null, has_more: false }));
	}

	function fileRoute(res, id, sub, method) {
		const entry = files.get(id);
		if (!entry) return h.sendError(res, 404, `No such File object: ${id}`, 'invalid_request_error', 'id', null);
		if (method === 'DELETE') {
			files.delete(id);
			return h.sendJson(res, 200, JSON.stringify({ id, object: 'file', deleted: true }));
		}
		if (!sub) return h.sendJson(res, 200, JSON.stringify(entry.file));
		res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': entry.data.length });
		res.end(entry.data);
	}

	function createBatch(res, raw) {
		let body;
		try {
			body = JSON.parse(raw.toString('utf8'));
		} catch {
			return h.sendError(res, 400, 'The request body must be JSON.', 'invalid_request_error', null, null);
		}
		const input = body && files.get(body.input_file_id);
		if (!input) return h.sendError(res, 404, `No such File object: ${body && body.input_file_id}`, 'invalid_request_error', 'input_file_id', null);
		if (input.file.purpose !== 'batch')
			return h.sendError(res, 400, "The input file must have purpose 'batch'.", 'invalid_request_error', 'input_file_id', 'invalid_value');
		if (body.completion_window !== '24h')
			return h.sendError(res, 400, "Invalid 'completion_window': expected '24h'.", 'invalid_request_error', 'completion_window', 'invalid_value');
		const lines = input.data.toString('utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
		const t = now();
		const batch = { id: h.newId('batch_'), object: 'batch', endpoint: body.endpoint, errors: null,
			input_file_id: input.file.id, completion_window: '24h', status: 'validating', output_file_id: null,
			error_file_id: null, created_at: t, in_progress_at: null, expires_at: t + 86400, finalizing_at: null,
			completed_at: null, failed_at: null, expired_at: null, cancelling_at: null, cancelled_at: null,
			request_counts: { total: lines.length, completed: 0, failed: 0 }, metadata: body.metadata || null,
			model: lines.length && lines[0].body ? lines[0].body.model : null };
		Object.defineProperty(batch, 'lines', { value: lines, enumerable: false });
		remember(batches, batch.id, batch);
		h.sendJson(res, 200, JSON.stringify(batch));
	}

	// The results of a completed batch: its output file and usage.
	function complete(b) {
		let input = 0;
		const out = b.lines.map((l, i) => {
			const tokens = Math.ceil(JSON.stringify(l.body).length / 4);
			input += tokens;
			const reply = { id: h.newId('chatcmpl-'), object: 'chat.completion', created: now(), model: l.body.model,
				choices: [{ index: 0, message: { role: 'assistant', content: `Batch answer number ${i + 1} here.` },
					finish_reason: 'stop' }],
				usage: { prompt_tokens: tokens, completion_tokens: OUTPUT_TOKENS, total_tokens: tokens + OUTPUT_TOKENS } };
			return JSON.stringify({ id: h.newId('batch_req_'), custom_id: l.custom_id,
				response: { status_code: 200, request_id: h.newId('req_'), body: reply }, error: null });
		});
		const t = now();
		b.output_file_id = store(`${b.id}_output.jsonl`, 'batch_output', Buffer.from(out.join('\n') + '\n')).id;
		b.completed_at = t;
		b.request_counts = { total: b.lines.length, completed: b.lines.length, failed: 0 };
		if (!b.lines.some((l) => JSON.stringify(l).includes('mock_no_usage'))) {
			const output = OUTPUT_TOKENS * b.lines.length;
			b.usage = { input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: output,
				output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output };
		}
	}

	function step(b) {
		if (b.status === 'cancelling') {
			b.status = 'cancelled';
			b.cancelled_at = now();
			return;
		}
		const i = STEPS.indexOf(b.status);
		if (i < 0 || i === STEPS.length - 1) return;
		b.status = STEPS[i + 1];
		if (b.status === 'in_progress') b.in_progress_at = now();
		if (b.status === 'finalizing') b.finalizing_at = now();
		if (b.status === 'completed') complete(b);
	}

	function batchRoute(res, id, sub, method) {
		const b = batches.get(id);
		if (!b) return h.sendError(res, 404, `No such Batch object: ${id}`, 'invalid_request_error', 'id', null);
		if (sub) {
			if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status))
				return h.sendError(res, 409, `Cannot cancel a batch with status '${b.status}'.`, 'invalid_request_error', null, null);
			b.status = 'cancelling';
			b.cancelling_at = now();
		} else if (method === 'GET') {
			step(b);
		}
		h.sendJson(res, 200, JSON.stringify(b));
	}

	// Handles /v1/files... and /v1/batches...; false when the path is not one of them.
	return function route(req, res, path, method, raw) {
		if (path === '/v1/files') {
			if (method === 'POST') upload(req, res, raw);
			else if (method === 'GET') list(res, files, (e) => e.file);
			else return false;
			return true;
		}
		if (path === '/v1/batches') {
			if (method === 'POST') createBatch(res, raw);
			else if (method === 'GET') list(res, batches, (b) => b);
			else return false;
			return true;
		}
		let m = /^\/v1\/files\/([^/]+)(\/content)?$/.exec(path);
		if (m && (method === 'GET' || (method === 'DELETE' && !m[2]))) {
			fileRoute(res, m[1], m[2], method);
			return true;
		}
		m = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
		if (m && ((method === 'GET' && !m[2]) || (method === 'POST' && m[2]))) {
			batchRoute(res, m[1], m[2], method);
			return true;
		}
		return false;
	};
};
