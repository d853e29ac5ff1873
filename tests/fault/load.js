#!/usr/bin/env node
// Bounded, count-based load for the fault suite: a fixed number of chat
// requests at a steady rate, every answer checked. Node.js 20, no npm
// dependencies.
//
//   node tests/fault/load.js --url URL --key KEY --model M --total N
//        [--rate R] [--concurrency C] [--bad-every K] [--progress FILE]
//        [--delay-ms MS] [--timeout-ms MS]
//
//   --rate R         requests started per second (300)
//   --concurrency C  requests in flight at most (64)
//   --bad-every K    every K-th request carries an unknown key instead (0: none);
//                    each must be refused, never admitted
//   --progress FILE  the count of finished requests, rewritten every 50 ms
//   --delay-ms MS    x-mock-delay-ms sent to the mock model server (0)
//   --timeout-ms MS  a request without a complete answer after this is counted
//                    as unanswered (30000)
//
// Prints one JSON object on stdout when all are finished:
//   total, answered, unanswered (connection error or timeout), status {code: n},
//   non_json (an answer whose body is not a JSON object, or not application/json),
//   retried (requests sent on a reused keep-alive connection that the gateway closed
//   before any byte of an answer, sent again once on a new connection, as HTTP clients
//   do: HAProxy closes the client connection that way when a reused server connection
//   fails, so that the client retries),
//   ok (200s among the good-key requests), bad_admitted (an unknown key answered
//   2xx), no_retry_after (a 503 without retry-after), codes {error.code: n} of the
//   good-key requests that failed, errors (first messages).
'use strict';

const http = require('node:http');
const fs = require('node:fs');

function args(argv) {
	const o = { rate: 300, concurrency: 64, badEvery: 0, delayMs: 0, timeoutMs: 30000 };
	const names = { '--url': 'url', '--key': 'key', '--model': 'model', '--total': 'total',
		'--rate': 'rate', '--concurrency': 'concurrency', '--bad-every': 'badEvery',
		'--progress': 'progress', '--delay-ms': 'delayMs', '--timeout-ms': 'timeoutMs' };
	for (let i = 2; i < argv.length; i += 2) {
		const k = names[argv[i]];
		if (!k || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
		o[k] = ['url', 'key', 'model', 'progress'].includes(k) ? argv[i + 1] : Number(argv[i + 1]);
	}
	for (const k of ['url', 'key', 'model', 'total'])
		if (o[k] === undefined) throw new Error(`--${k} is required`);
	return o;
}

const o = args(process.argv);
const url = new URL('/v1/chat/completions', o.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
const res = { total: o.total, answered: 0, unanswered: 0, status: {}, non_json: 0, ok: 0,
	bad_admitted: 0, no_retry_after: 0, retried: 0, codes: {}, errors: [] };
let started = 0, finished = 0, inflight = 0;

function note(msg) {
	if (res.errors.length < 5) res.errors.push(msg);
}

function checkAnswer(r, body, bad) {
	const s = r.statusCode;
	res.answered++;
	res.status[s] = (res.status[s] || 0) + 1;
	let j = null;
	try { j = JSON.parse(body); } catch (e) { j = null; }
	const ct = String(r.headers['content-type'] || '');
	if (!j || typeof j !== 'object' || !ct.startsWith('application/json')) {
		res.non_json++;
		note(`status ${s}, content-type '${ct}', body ${JSON.stringify(body.slice(0, 120))}`);
	}
	if (bad && s >= 200 && s < 300) res.bad_admitted++;
	if (!bad && s === 200) res.ok++;
	if (!bad && s !== 200) {
		const code = (j && j.error && j.error.code) || `http_${s}`;
		res.codes[code] = (res.codes[code] || 0) + 1;
	}
	if (s === 503 && !r.headers['retry-after']) res.no_retry_after++;
}

function one(n, retry) {
	const bad = o.badEvery > 0 && n % o.badEvery === 0;
	const key = bad ? 'jr-' + '0'.repeat(63) + (n % 10) : o.key;
	const body = JSON.stringify({ model: o.model, messages: [{ role: 'user', content: `fault ${n}` }],
		max_tokens: 16 });
	const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}`,
		'content-length': Buffer.byteLength(body) };
	if (o.delayMs) headers['x-mock-delay-ms'] = String(o.delayMs);
	if (!retry) inflight++;
	let done = false, answered = false;
	const finish = () => {
		if (done) return;
		done = true;
		inflight--;
		finished++;
		if (finished === o.total) end();
	};
	const failed = (what, e) => {
		if (done) return;
		if (!answered && !retry && req.reusedSocket) {
			done = true;
			res.retried++;
			one(n, true);
			return;
		}
		res.unanswered++;
		note(`${what} ${n}: ${e.message}`);
		finish();
	};
	const req = http.request(url, { method: 'POST', headers, agent: retry ? false : agent,
		timeout: o.timeoutMs }, (r) => {
		answered = true;
		const chunks = [];
		r.on('data', (c) => chunks.push(c));
		r.on('end', () => { checkAnswer(r, Buffer.concat(chunks).toString('utf8'), bad); finish(); });
		r.on('error', (e) => failed('response', e));
	});
	req.on('timeout', () => req.destroy(new Error('timeout')));
	req.on('error', (e) => failed('request', e));
	req.end(body);
}

function end() {
	clearInterval(tick);
	clearInterval(prog);
	writeProgress();
	agent.destroy();
	process.stdout.write(JSON.stringify(res) + '\n');
}

function writeProgress() {
	if (o.progress) fs.writeFileSync(o.progress, `${finished}\n`);
}

// Starts are paced by a 10 ms tick: rate/100 per tick, carried over fractions.
let credit = 0;
const tick = setInterval(() => {
	credit += o.rate / 100;
	while (credit >= 1 && started < o.total && inflight < o.concurrency) {
		credit--;
		one(++started);
	}
	if (credit > o.rate) credit = o.rate; // bounded catch-up after a stall
}, 10);
const prog = setInterval(writeProgress, 50);
