// The Realtime API of tests/mock/mock-openai.js, following OpenAI's Realtime API
// reference (a WebSocket at GET /v1/realtime?model=M; JSON events both ways):
//
//   on connect               session.created
//   session.update           session.updated
//   conversation.item.create conversation.item.created (its text counts as input)
//   response.create          response.created, response.output_item.added,
//                            response.content_part.added, response.output_text.delta
//                            (one per word), response.output_text.done,
//                            response.content_part.done, response.output_item.done,
//                            response.done with usage {input_tokens, output_tokens, ...}
//
// WebSocket framing (RFC 6455) by hand: the upgrade answered from the 'upgrade' event
// (Sec-WebSocket-Accept = base64(SHA-1(key + GUID))), client frames must be masked
// (else close 1002), fragments joined, ping answered with pong, close echoed. The
// mock sends response.done in three fragments with a ping between them, as a server
// may. Usage: input_tokens = 10 + ceil(characters of the session's input texts / 4);
// output_tokens = the words of the reply ("Hello from the realtime mock." unless
// response.instructions says "say: TEXT").
//
// Test hooks (not OpenAI's): response.create with response.metadata.mock_delta_bytes
// = N sends one output_text.delta of N bytes, mock_close_after = "true" closes the session
// (1000) after response.done, mock_cut_before_done = "true" closes it (1011) after the
// text deltas, without response.done; GET /_mock/realtime (mock-openai.js)
// returns {sessions, closed, responses, input_tokens, output_tokens, last_upgrade}.
'use strict';

const crypto = require('node:crypto');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE = 16 * 1024 * 1024;

module.exports = function realtimeApi(h) {
	const stats = { sessions: 0, closed: 0, responses: 0, input_tokens: 0, output_tokens: 0, last_upgrade: null };

	function frame(opcode, payload, fin = true) {
		const n = payload.length;
		const head = n < 126 ? Buffer.alloc(2) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
		head[0] = (fin ? 0x80 : 0) | opcode;
		if (n < 126) head[1] = n;
		else if (n < 65536) { head[1] = 126; head.writeUInt16BE(n, 2); }
		else { head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
		return Buffer.concat([head, payload]);
	}

	function refuse(socket, status, message, code) {
		const body = h.errorBody(message, status === 401 ? 'authentication_error' : 'invalid_request_error', null, code);
		socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Bad Request'}\r\ncontent-type: application/json\r\n` +
			`content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
	}

	function session(socket, model) {
		const s = { socket, model, inputChars: 0, buf: Buffer.alloc(0), parts: [], open: true, seq: 0 };
		const send = (ev) => {
			if (!s.open) return;
			ev.event_id = `event_${crypto.randomBytes(8).toString('hex')}`;
			socket.write(frame(0x1, Buffer.from(JSON.stringify(ev))));
		};
		const close = (code) => {
			if (!s.open) return;
			s.open = false;
			const p = Buffer.alloc(2);
			p.writeUInt16BE(code, 0);
			socket.end(frame(0x8, p));
		};
		s.send = send;
		s.close = close;
		send({ type: 'session.created', session: { id: h.newId('sess_'), object: 'realtime.session', model,
			modalities: ['text'], instructions: '', voice: 'alloy', turn_detection: null, tools: [] } });
		return s;
	}

	function respond(s, req) {
		const r = req.response || {};
		const bytes = Number(r.metadata && r.metadata.mock_delta_bytes) || 0;
		const m = typeof r.instructions === 'string' ? /^say: (.*)$/s.exec(r.instructions) : null;
		const text = bytes > 0 ? 'x'.repeat(bytes) : m ? m[1] : 'Hello from the realtime mock.';
		const words = text.split(/\s+/).filter(Boolean);
		const id = h.newId('resp_'), itemId = h.newId('item_');
		const base = { id, object: 'realtime.response', status: 'in_progress', output: [], usage: null };
		s.send({ type: 'response.created', response: base });
		const item = { id: itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'in_progress', content: [] };
		s.send({ type: 'response.output_item.added', response_id: id, output_index: 0, item });
		s.send({ type: 'response.content_part.added', response_id: id, item_id: itemId, output_index: 0, content_index: 0, part: { type: 'text', text: '' } });
		const deltas = bytes > 0 ? [text] : words.map((w, i) => (i ? ' ' : '') + w);
		for (const d of deltas) {
			s.send({ type: 'response.output_text.delta', response_id: id, item_id: itemId, output_index: 0, content_index: 0, delta: d });
		}
		if (r.metadata && r.metadata.mock_cut_before_done === 'true') {
			s.close(1011); // the server fails mid-response: no response.done, no usage
			return;
		}
		s.send({ type: 'response.output_text.done', response_id: id, item_id: itemId, output_index: 0, content_index: 0, text });
		s.send({ type: 'response.content_part.done', response_id: id, item_id: itemId, output_index: 0, content_index: 0, part: { type: 'text', text } });
		const done = { ...item, status: 'completed', content: [{ type: 'text', text }] };
		s.send({ type: 'response.output_item.done', response_id: id, output_index: 0, item: done });
		const input = 10 + Math.ceil(s.inputChars / 4), output = bytes > 0 ? 1 : words.length;
		const usage = { total_tokens: input + output, input_tokens: input, output_tokens: output,
			input_token_details: { cached_tokens: 0, text_tokens: input, audio_tokens: 0 },
			output_token_details: { text_tokens: output, audio_tokens: 0 } };
		stats.responses++;
		stats.input_tokens += input;
		stats.output_tokens += output;
		// response.done in three fragments with a ping between them (RFC 6455 5.4, 5.5).
		const payload = Buffer.from(JSON.stringify({ type: 'response.done', event_id: `event_${crypto.randomBytes(8).toString('hex')}`,
			response: { ...base, status: 'completed', output: [done], usage } }));
		const a = Math.floor(payload.length / 3), b = Math.floor((2 * payload.length) / 3);
		s.socket.write(Buffer.concat([frame(0x1, payload.subarray(0, a), false), frame(0x9, Buffer.from('mock')),
			frame(0x0, payload.subarray(a, b), false), frame(0x0, payload.subarray(b), true)]));
		if (r.metadata && r.metadata.mock_close_after === 'true') s.close(1000);
	}

	function onEvent(s, text) {
		let ev;
		try {
			ev = JSON.parse(text);
		} catch {
			s.send({ type: 'error', error: { type: 'invalid_request_error', code: 'invalid_json', message: 'The event is not JSON.' } });
			return;
		}
		if (ev.type === 'session.update') {
			s.send({ type: 'session.updated', session: { object: 'realtime.session', model: s.model, ...(ev.session || {}) } });
		} else if (ev.type === 'conversation.item.create') {
			const item = { id: h.newId('item_'), object: 'realtime.item', status: 'completed', ...(ev.item || {}) };
			for (const c of item.content || []) if (typeof c.text === 'string') s.inputChars += c.text.length;
			s.send({ type: 'conversation.item.created', previous_item_id: null, item });
		} else if (ev.type === 'response.create') {
			respond(s, ev);
		} else {
			s.send({ type: 'error', error: { type: 'invalid_request_error', code: 'unknown_event', message: `Unknown event type '${ev.type}'.`, event_id: ev.event_id || null } });
		}
	}

	// One frame from s.buf, or null when incomplete; false after a protocol error.
	function readFrame(s) {
		const b = s.buf;
		if (b.length < 2) return null;
		const masked = (b[1] & 0x80) !== 0;
		let len = b[1] & 0x7f, off = 2;
		if (len === 126) { if (b.length < 4) return null; len = b.readUInt16BE(2); off = 4; }
		else if (len === 127) { if (b.length < 10) return null; len = Number(b.readBigUInt64BE(2)); off = 10; }
		if (!masked) return false;
		if (len > MAX_MESSAGE) return false;
		if (b.length < off + 4 + len) return null;
		const key = b.subarray(off, off + 4), payload = Buffer.from(b.subarray(off + 4, off + 4 + len));
		for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
		s.buf = b.subarray(off + 4 + len);
		return { fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload };
	}

	function onData(s, chunk) {
		s.buf = Buffer.concat([s.buf, chunk]);
		for (;;) {
			const f = readFrame(s);
			if (f === null) return;
			if (f === false) { s.close(1002); return; }
			if (f.opcode === 0x8) { s.close(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1000); return; }
			if (f.opcode === 0x9) { s.socket.write(frame(0xA, f.payload)); continue; }
			if (f.opcode === 0xA) continue;
			s.parts.push(f.payload);
			if (f.fin) {
				const text = Buffer.concat(s.parts).toString('utf8');
				s.parts = [];
				onEvent(s, text);
			}
		}
	}

	function upgrade(req, socket) {
		const url = new URL(req.url, 'http://mock');
		if (url.pathname !== '/v1/realtime') return refuse(socket, 400, `No WebSocket at ${url.pathname}.`, 'unknown_url');
		const key = req.headers['sec-websocket-key'];
		if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || !key || req.headers['sec-websocket-version'] !== '13')
			return refuse(socket, 400, 'A WebSocket upgrade is expected.', 'invalid_upgrade');
		const auth = h.authFailure(req);
		if (auth) return refuse(socket, 401, auth[0], auth[1]);
		const model = url.searchParams.get('model');
		if (!model) return refuse(socket, 400, 'You must provide a model parameter.', 'missing_model');
		stats.sessions++;
		stats.last_upgrade = { model, extensions: req.headers['sec-websocket-extensions'] || null,
			protocol: req.headers['sec-websocket-protocol'] || null, openai_beta: req.headers['openai-beta'] || null,
			authorization: req.headers.authorization ? 'present' : null };
		const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
		const proto = req.headers['sec-websocket-protocol'];
		socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
			`Sec-WebSocket-Accept: ${accept}\r\nx-mock-server: ${h.name}\r\n` +
			(proto ? `Sec-WebSocket-Protocol: ${proto.split(',')[0].trim()}\r\n` : '') + '\r\n');
		const s = session(socket, model);
		socket.on('data', (c) => onData(s, c));
		socket.on('error', () => {});
		socket.on('close', () => { stats.closed++; s.open = false; });
	}

	return { upgrade, stats: () => stats };
};
