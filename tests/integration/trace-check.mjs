// trace-check.mjs: checks the spans an OTLP receiver stored (otlp-receiver.py) for one
// trace. Usage: node trace-check.mjs SPANS_FILE TRACE_ID
// Prints one JSON object: the spans of the trace by role, and every broken rule in
// "errors" (empty when the trace is consistent):
//   - every span's parent is in the trace, except the gateway's (the client's span, or none);
//   - a child starts and ends within its parent;
//   - one gateway span (kind SERVER), one decision span and one child per stage it counts.
import fs from 'node:fs';

const [file, traceId] = process.argv.slice(2);
const spans = [];
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
	if (!line) continue;
	for (const rs of JSON.parse(line).resourceSpans || [])
		for (const ss of rs.scopeSpans || [])
			for (const s of ss.spans || []) if (s.traceId === traceId) spans.push(s);
}
const attrs = (s) => Object.fromEntries((s.attributes || []).map((a) =>
	[a.key, a.value.stringValue !== undefined ? a.value.stringValue : Number(a.value.intValue)]));
const byId = new Map(spans.map((s) => [s.spanId, s]));
const errors = [];
const gateway = spans.filter((s) => s.kind === 2 && s.name !== 'jairouter.adapter');
const decision = spans.filter((s) => s.name === 'jairouter.decision');
if (gateway.length !== 1) errors.push(`${gateway.length} gateway spans`);
if (decision.length !== 1) errors.push(`${decision.length} decision spans`);
for (const s of spans) {
	if (BigInt(s.endTimeUnixNano) < BigInt(s.startTimeUnixNano)) errors.push(`${s.name} ends before it starts`);
	if (gateway.includes(s)) continue;
	const p = byId.get(s.parentSpanId);
	if (!p) { errors.push(`${s.name}: parent ${s.parentSpanId} not in the trace`); continue; }
	if (BigInt(s.startTimeUnixNano) < BigInt(p.startTimeUnixNano) || BigInt(s.endTimeUnixNano) > BigInt(p.endTimeUnixNano))
		errors.push(`${s.name} is not within ${p.name}`);
}
const stages = decision.length ? spans.filter((s) => s.parentSpanId === decision[0].spanId) : [];
if (decision.length && stages.length !== attrs(decision[0])['jairouter.stages'])
	errors.push(`${stages.length} stage spans for ${attrs(decision[0])['jairouter.stages']} stages`);
const g = gateway[0];
const out = {
	count: spans.length,
	gateway: g ? { spanId: g.spanId, parent: g.parentSpanId || '', attrs: attrs(g) } : null,
	decision_parent: decision.length ? decision[0].parentSpanId : '',
	stages: stages.map((s) => s.name),
	model_server: spans.filter((s) => s.kind === 3).map((s) => ({ name: s.name, parent: s.parentSpanId, attrs: attrs(s) })),
	adapter: spans.filter((s) => s.name === 'jairouter.adapter').map((s) => ({ spanId: s.spanId, parent: s.parentSpanId })),
	errors,
};
console.log(JSON.stringify(out));
