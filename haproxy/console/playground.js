// The playground: one streamed chat completion (POST /v1/chat/completions, "stream": true,
// usage requested) with the signed-in credential or a key just issued, read as server-sent
// events. Shown: the answer as it arrives, tokens, cost (the admin API's prices), time to the
// first token, total latency, the gateway's overhead and the trace id (the traceparent
// response header when present, else x-request-id).
import { session, call, el, say, loadPrices } from './console.js';

const $ = (id) => document.getElementById(id);
let controller = null;

function keyFor(choice) {
	return choice === 'issued' && session.issued ? session.issued.key : session.token;
}

// Fills the key choice: the signed-in credential and, when one was issued in this tab, that key.
export function playgroundKeys(select) {
	const sel = $('pg-key');
	const keep = select || sel.value || 'session';
	const opts = [el('option', { value: 'session', text: 'The credential you signed in with' })];
	if (session.issued) {
		const k = session.issued;
		opts.push(el('option', { value: 'issued', text: `Key ${k.prefix} (${k.name})${k.revoked ? ', revoked' : ''}` }));
	}
	sel.replaceChildren(...opts);
	sel.value = opts.some((o) => o.value === keep) ? keep : 'session';
}

// The models the chosen key may use (GET /v1/models with that key).
async function loadModels() {
	const sel = $('pg-model');
	const prev = sel.value;
	try {
		const r = await call('/v1/models', { token: keyFor($('pg-key').value) });
		sel.replaceChildren(...r.data.map((m) => el('option', { value: m.id, text: m.id })));
		if (r.data.some((m) => m.id === prev)) sel.value = prev;
	} catch (e) {
		say(`Models for this key: ${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`, true);
	}
}

export function playgroundShown() {
	if (!session.prices.size) loadPrices().catch(() => {});
	return loadModels();
}

function stat(name, value) {
	const dl = $('pg-stats');
	let dd = dl.querySelector(`dd[data-k="${name}"]`);
	if (!dd) {
		dl.append(el('dt', { text: name }));
		dd = el('dd', { 'data-k': name });
		dl.append(dd);
	}
	dd.textContent = value;
}

function cost(model, usage) {
	const m = session.prices.get(model);
	if (!m || m.price_in === null || m.price_in === undefined) return 'unknown (no price for this model)';
	const c = (usage.prompt_tokens * Number(m.price_in) + usage.completion_tokens * Number(m.price_out)) / 1e6;
	return `${c.toFixed(8)} ${m.currency || ''}`.trim();
}

// Reads the SSE body: `data: {...}` events until `data: [DONE]`; returns the usage seen.
async function readStream(res, out, onFirst) {
	const reader = res.body.getReader();
	const dec = new TextDecoder();
	let buf = '', usage = null, first = true;
	for (;;) {
		const { value, done } = await reader.read();
		if (done) break;
		buf += dec.decode(value, { stream: true });
		let i;
		while ((i = buf.indexOf('\n\n')) >= 0) {
			const ev = buf.slice(0, i);
			buf = buf.slice(i + 2);
			for (const line of ev.split('\n')) {
				if (!line.startsWith('data:')) continue;
				const data = line.slice(5).trim();
				if (data === '[DONE]') return usage;
				const obj = JSON.parse(data);
				if (obj.error) throw new Error(obj.error.message || 'the stream ended with an error');
				const delta = obj.choices && obj.choices[0] && obj.choices[0].delta && obj.choices[0].delta.content;
				if (delta) {
					if (first) onFirst();
					first = false;
					out.textContent += delta;
				}
				if (obj.usage) usage = obj.usage;
			}
		}
	}
	return usage;
}

async function send(ev) {
	ev.preventDefault();
	const model = $('pg-model').value;
	const messages = [];
	if ($('pg-system').value.trim()) messages.push({ role: 'system', content: $('pg-system').value });
	messages.push({ role: 'user', content: $('pg-prompt').value });
	const body = { model, messages, stream: true, stream_options: { include_usage: true },
		max_tokens: Number($('pg-max').value) || 256, temperature: Number($('pg-temp').value) };
	const out = $('pg-out');
	out.textContent = '';
	$('pg-stats').replaceChildren();
	controller = new AbortController();
	$('pg-send').disabled = true;
	$('pg-stop').disabled = false;
	say(`Calling ${model}…`);
	const t0 = performance.now();
	try {
		const res = await fetch('/v1/chat/completions', { method: 'POST', signal: controller.signal,
			cache: 'no-store', credentials: 'omit',
			headers: { Authorization: `Bearer ${keyFor($('pg-key').value)}`, 'Content-Type': 'application/json' },
			body: JSON.stringify(body) });
		stat('status', String(res.status));
		stat('trace id', res.headers.get('traceparent') || res.headers.get('x-request-id') || '—');
		if (res.headers.get('x-jairouter-model')) stat('served by', res.headers.get('x-jairouter-model'));
		if (!res.ok) {
			const err = await res.json().catch(() => null);
			const msg = err && err.error ? `${err.error.message} (${err.error.code || err.error.type})` : `HTTP ${res.status}`;
			out.textContent = msg;
			say(`Refused: ${msg}`, true);
			return;
		}
		const usage = await readStream(res, out, () => stat('time to first token', `${Math.round(performance.now() - t0)} ms`));
		stat('latency', `${Math.round(performance.now() - t0)} ms`);
		if (res.headers.get('x-jairouter-overhead-ms')) stat('gateway overhead', `${res.headers.get('x-jairouter-overhead-ms')} ms`);
		if (usage) {
			stat('prompt tokens', String(usage.prompt_tokens));
			stat('completion tokens', String(usage.completion_tokens));
			stat('cost', cost(model, usage));
		} else {
			stat('tokens', 'not reported by the stream');
		}
		say('Done.');
	} catch (e) {
		say(e.name === 'AbortError' ? 'Stopped.' : `The call failed: ${e.message}`, e.name !== 'AbortError');
	} finally {
		$('pg-send').disabled = false;
		$('pg-stop').disabled = true;
		controller = null;
	}
}

export function initPlayground() {
	$('pg-form').addEventListener('submit', send);
	$('pg-stop').addEventListener('click', () => controller && controller.abort());
	$('pg-key').addEventListener('change', loadModels);
}
