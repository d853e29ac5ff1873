// One Realtime API session through the gateway, for tests/integration/realtime.bats:
//
//   node realtime-session.mjs URL KEY MODEL [--responses N] [--hold FILE] [--big BYTES]
//                             [--server-close] [--cut TEXT] [--header NAME:VALUE]...
//
// Connects to URL/v1/realtime?model=MODEL (the `ws` package, as the openai SDK does,
// with its default permessage-deflate offer), sends a conversation item and N
// response.create events (default 1), and prints one JSON line when the session ends:
// {"status":101,"responses":N,"input_tokens":…,"output_tokens":…,"close_code":…} or, for
// a refused upgrade, {"status":S,"body":{…}}. --hold FILE: after the responses, writes
// FILE and keeps the session open until FILE is removed. --big BYTES: asks the mock for
// one delta of BYTES (its test hook) and reports how the session closed. --server-close:
// asks the mock to close the session after its response (its test hook) and waits.
// --cut TEXT: asks for a reply of TEXT that the mock cuts before its response.done.
import { existsSync, writeFileSync } from 'node:fs';
import WebSocket from 'ws';

const [url, key, model, ...rest] = process.argv.slice(2);
const opt = { responses: 1, hold: null, big: 0, serverClose: false, cut: null, headers: {} };
for (let i = 0; i < rest.length; i += 2) {
	if (rest[i] === '--server-close') {
		opt.serverClose = true;
		i--;
	} else if (rest[i] === '--responses') opt.responses = Number(rest[i + 1]);
	else if (rest[i] === '--hold') opt.hold = rest[i + 1];
	else if (rest[i] === '--big') opt.big = Number(rest[i + 1]);
	else if (rest[i] === '--cut') opt.cut = rest[i + 1];
	else if (rest[i] === '--header') {
		const [n, ...v] = rest[i + 1].split(':');
		opt.headers[n] = v.join(':');
	} else throw new Error(`unknown option ${rest[i]}`);
}

const headers = { 'OpenAI-Beta': 'realtime=v1', ...opt.headers };
if (key !== '-') headers.Authorization = `Bearer ${key}`;
const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/realtime?model=${encodeURIComponent(model)}`, { headers });
const out = { status: 101, responses: 0, input_tokens: 0, output_tokens: 0, close_code: null, extensions: null };
const timer = setTimeout(() => {
	console.log(JSON.stringify({ ...out, error: 'timeout' }));
	process.exit(2);
}, 60000);

ws.on('unexpected-response', (req, res) => {
	let body = '';
	res.on('data', (c) => { body += c; });
	res.on('end', () => {
		let parsed = body;
		try { parsed = JSON.parse(body); } catch { /* printed as text */ }
		console.log(JSON.stringify({ status: res.statusCode, body: parsed }));
		clearTimeout(timer);
		process.exit(0);
	});
});

ws.on('upgrade', (res) => {
	out.extensions = res.headers['sec-websocket-extensions'] || null;
});

ws.on('open', () => {
	ws.send(JSON.stringify({ type: 'conversation.item.create',
		item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello through the gateway' }] } }));
	if (opt.big > 0) {
		ws.send(JSON.stringify({ type: 'response.create', response: { metadata: { mock_delta_bytes: String(opt.big) } } }));
		return;
	}
	if (opt.cut !== null) {
		ws.send(JSON.stringify({ type: 'response.create', response: { instructions: `say: ${opt.cut}`,
			metadata: { mock_cut_before_done: 'true' } } }));
		return;
	}
	if (opt.serverClose) {
		ws.send(JSON.stringify({ type: 'response.create', response: { metadata: { mock_close_after: 'true' } } }));
		return;
	}
	for (let i = 0; i < opt.responses; i++) ws.send(JSON.stringify({ type: 'response.create' }));
});

function holdThenClose() {
	if (existsSync(opt.hold)) {
		setTimeout(holdThenClose, 50);
		return;
	}
	ws.close(1000, 'done');
}

ws.on('message', (data) => {
	const ev = JSON.parse(data.toString());
	if (ev.type !== 'response.done') return;
	out.responses++;
	out.input_tokens += ev.response.usage.input_tokens;
	out.output_tokens += ev.response.usage.output_tokens;
	if (out.responses < opt.responses || opt.serverClose) return;
	if (opt.hold) {
		writeFileSync(opt.hold, 'open\n');
		holdThenClose();
	} else {
		ws.close(1000, 'done');
	}
});

ws.on('close', (code) => {
	out.close_code = code;
	console.log(JSON.stringify(out));
	clearTimeout(timer);
	process.exit(0);
});

ws.on('error', (err) => {
	out.error = err.message;
});
