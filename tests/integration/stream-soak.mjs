// stream-soak.mjs: N streamed requests through the gateway, C at a time, and a check of
// what each client saw. Usage: node stream-soak.mjs URL KEY MODEL N C
//
// The requests cycle through the ways a client can ask (or not) for the usage chunk:
//   0 chat, no stream_options            (the gateway asks, and removes the chunk)
//   1 chat, include_usage true           (the client asked: exactly one usage chunk)
//   2 chat, include_usage false          (the gateway asks, and removes the chunk)
//   3 completions, no stream_options
// with max_tokens 1..40. Every answer must be 200 and end with [DONE]. Prints one JSON
// line: {"ok": N, "failed": N, "usage_chunks_seen": N, "usage_chunks_expected": N,
// "errors": [first few]}.
//
// Each client connects from its own loopback address (127.0.0.101, .102, ...): a soak is
// one tenant's traffic, not one client's, and an operator's per-address rate limit in
// front of the gateway (the operator fixture allows 2,000 requests per 10 s per address)
// must not refuse it.
import http from 'node:http';
import https from 'node:https';

const [url, key, model, nArg, cArg] = process.argv.slice(2);
const total = Number(nArg), conc = Number(cArg);
const out = { ok: 0, failed: 0, usage_chunks_seen: 0, usage_chunks_expected: 0, errors: [] };

function request(i) {
	const kind = i % 4, maxTokens = 1 + (i % 40);
	const body = { model, stream: true, max_tokens: maxTokens };
	let path = '/v1/chat/completions';
	if (kind === 3) {
		path = '/v1/completions';
		body.prompt = `soak ${i}`;
	} else {
		body.messages = [{ role: 'user', content: `soak request ${i} ${'x'.repeat(i % 17)}` }];
	}
	if (kind === 1) body.stream_options = { include_usage: true };
	if (kind === 2) body.stream_options = { include_usage: false };
	return { path, body, wantUsage: kind === 1 };
}

function fail(msg) {
	out.failed++;
	if (out.errors.length < 5) out.errors.push(msg);
}

// POST body to url + path from localAddress; resolves { status, text }.
function post(path, body, localAddress) {
	const u = new URL(url + path);
	const mod = u.protocol === 'https:' ? https : http;
	const data = Buffer.from(JSON.stringify(body));
	return new Promise((resolve, reject) => {
		const req = mod.request(u, {
			method: 'POST',
			localAddress,
			headers: {
				authorization: `Bearer ${key}`,
				'content-type': 'application/json',
				'content-length': data.length,
			},
		}, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
			res.on('error', reject);
		});
		req.setTimeout(30000, () => req.destroy(new Error('timeout')));
		req.on('error', reject);
		req.end(data);
	});
}

async function one(i, client) {
	const r = request(i);
	let res, text;
	try {
		res = await post(r.path, r.body, `127.0.0.${101 + client}`);
		text = res.text;
	} catch (e) {
		return fail(`request ${i}: ${e.message}`);
	}
	if (res.status !== 200) return fail(`request ${i}: status ${res.status}: ${text.slice(0, 200)}`);
	const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
	if (events.length === 0 || events[events.length - 1] !== 'data: [DONE]') {
		return fail(`request ${i}: no [DONE] at the end`);
	}
	let usageChunks = 0;
	for (const e of events.slice(0, -1)) {
		const o = JSON.parse(e.slice(6));
		if (o.usage) usageChunks++;
	}
	out.usage_chunks_seen += usageChunks;
	if (r.wantUsage) out.usage_chunks_expected++;
	if (usageChunks !== (r.wantUsage ? 1 : 0)) {
		return fail(`request ${i} (kind ${i % 4}): ${usageChunks} usage chunks`);
	}
	out.ok++;
}

let next = 0;
async function worker(client) {
	while (next < total) await one(next++, client);
}
await Promise.all(Array.from({ length: conc }, (_, client) => worker(client)));
console.log(JSON.stringify(out));
