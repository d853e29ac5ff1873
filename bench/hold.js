// Benchmark only (scripts/bench-memory): holds COUNT streamed chat completions open at
// once through a gateway, to measure what open streams cost in memory.
//
//   node bench/hold.js URL KEY MODEL COUNT TIMEOUT_S READY_FILE
//
// Opens COUNT requests (stream: true), each on its own connection, writes "open N" to
// READY_FILE once every one has received its first event (all are then held open by the
// upstream, which spaces its events), then reads every stream to its end. Bounded: COUNT
// <= 5000, and it exits after TIMEOUT_S (<= 600) whatever is still open. Prints one line:
//   HOLD count=N first_event=N completed=N failed=N
// and exits 0 when every stream completed with [DONE], 1 otherwise.
'use strict';
const http = require('node:http');
const fs = require('node:fs');

const [url, key, model, countArg, timeoutArg, readyFile] = process.argv.slice(2);
const count = Number(countArg);
const timeoutS = Number(timeoutArg);
if (!url || !key || !model || !readyFile || !Number.isInteger(count) || count < 1 || count > 5000 ||
	!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 600) {
	process.stderr.write('usage: node bench/hold.js URL KEY MODEL COUNT(1..5000) TIMEOUT_S(1..600) READY_FILE\n');
	process.exit(2);
}
const target = new URL('/v1/chat/completions', url);
const body = JSON.stringify({
	model,
	stream: true,
	max_tokens: 16,
	messages: [{ role: 'user', content: 'Say something slowly.' }],
});
const agent = new http.Agent({ keepAlive: false, maxSockets: count + 1 });
let first = 0;
let completed = 0;
let failed = 0;

function finish() {
	process.stdout.write(`HOLD count=${count} first_event=${first} completed=${completed} failed=${failed}\n`);
	process.exit(completed === count ? 0 : 1);
}

function settle(ok) {
	if (ok) completed++;
	else failed++;
	if (completed + failed === count) finish();
}

for (let i = 0; i < count; i++) {
	const req = http.request(target, {
		method: 'POST',
		agent,
		headers: {
			authorization: `Bearer ${key}`,
			'content-type': 'application/json',
			'content-length': Buffer.byteLength(body),
		},
	});
	req.on('response', (res) => {
		if (res.statusCode !== 200) {
			res.resume();
			res.on('end', () => settle(false));
			return;
		}
		let seen = false;
		let tail = '';
		res.setEncoding('utf8');
		res.on('data', (d) => {
			if (!seen) {
				seen = true;
				first++;
				if (first === count) fs.writeFileSync(readyFile, `open ${count}\n`);
			}
			tail = (tail + d).slice(-64);
		});
		res.on('end', () => settle(tail.includes('[DONE]')));
		res.on('error', () => settle(false));
	});
	req.on('error', () => settle(false));
	req.end(body);
}
setTimeout(finish, timeoutS * 1000).unref();
