// cache-stream.mjs: one streamed chat request through the gateway with the official
// `openai` SDK, for the response cache's integration test (tests/integration/cache.bats).
// Usage: node cache-stream.mjs URL KEY MODEL PROMPT
// Prints one JSON line: {"cache": <x-jairouter-cache header or null>, "text": <the
// content deltas joined>, "chunks": <chunks with choices>, "finish": <last finish_reason>,
// "id": <the chunks' id>}. Any SDK error (a malformed event included) exits non-zero.
import OpenAI from 'openai';

const [url, key, model, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
const { data: stream, response } = await client.chat.completions
	.create({ model, stream: true, messages: [{ role: 'user', content: prompt }] })
	.withResponse();
const out = { cache: response.headers.get('x-jairouter-cache'), text: '', chunks: 0, finish: null, id: null };
for await (const chunk of stream) {
	if (chunk.object !== 'chat.completion.chunk') throw new Error(`unexpected object ${chunk.object}`);
	out.id = chunk.id;
	if (!chunk.choices.length) continue;
	out.chunks++;
	out.text += chunk.choices[0].delta?.content ?? '';
	if (chunk.choices[0].finish_reason) out.finish = chunk.choices[0].finish_reason;
}
console.log(JSON.stringify(out));
