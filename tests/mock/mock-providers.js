#!/usr/bin/env node
// Mock model servers for the providers jairouter-adapter translates, each following its
// documented wire format, streaming included. One process serves them all on one port.
// Node.js 20, no npm dependencies.
//
//   node tests/mock/mock-providers.js --port N [--host 127.0.0.1] [--key KEY]
//        [--aws-access-key ID --aws-secret SECRET] [--chunk-delay-ms MS]
//
//   Anthropic Messages   POST /v1/messages                  (x-api-key, anthropic-version)
//   Google Gemini        POST /v1beta/models/M:generateContent | :streamGenerateContent?alt=sse
//                        | :embedContent | :batchEmbedContents              (x-goog-api-key)
//   Amazon Bedrock       POST /model/M/converse | /model/M/converse-stream
//                        (SigV4 checked with --aws-access-key/--aws-secret; the stream in
//                        the binary application/vnd.amazon.eventstream framing)
//   Cohere chat v2       POST /v2/chat, embed v2 POST /v2/embed (Authorization: Bearer)
//   Bedrock embeddings   POST /model/M/invoke (SigV4): Amazon Titan {"inputText"} ->
//                        {"embedding","inputTextTokenCount"}; Cohere on Bedrock {"texts"}
//                        -> {"embeddings": [[...]]}
//   Ollama native        POST /api/chat (NDJSON stream unless "stream": false), POST /api/embed
//                                                           (Authorization: Bearer)
//   Azure OpenAI         POST /openai/deployments/D/chat/completions?api-version=V
//                        (api-key: KEY, or Authorization: Bearer <a token issued below>)
//   Vertex AI            POST /v1/projects/P/locations/L/publishers/google/models/M:generateContent
//                        | :streamGenerateContent?alt=sse (Gemini's wire format), and
//                        .../publishers/anthropic/models/M:rawPredict | :streamRawPredict
//                        (Anthropic's, "anthropic_version": "vertex-2023-10-16", no "model")
//                        (Authorization: Bearer <a token issued below>)
//   Entra ID tokens      POST /TENANT/oauth2/v2.0/token (client_credentials, form body;
//                        --entra-client ID:SECRET) -> {"access_token","expires_in",...}
//   Google tokens        POST /token (grant_type jwt-bearer; the assertion's RS256 signature
//                        checked with --google-key PEM and its iss with --google-email,
//                        aud must be this URL) -> {"access_token","expires_in",...}
//   Tencent Hunyuan      POST / with X-TC-Action: ChatCompletions, X-TC-Version: 2023-09-01
//                        (TC3-HMAC-SHA256 checked with --tc-secret ID:KEY; failures are
//                        HTTP 200 {"Response": {"Error": {"Code", "Message"}}}), "Stream": true
//                        answers SSE events {"Choices": [{"Delta", "FinishReason"}], "Usage"}
//   Alibaba DashScope    POST /api/v1/services/aigc/text-generation/generation (Authorization:
//                        Bearer; {"model", "input": {"messages"}, "parameters": {"result_format":
//                        "message", ...}}; X-DashScope-SSE: enable -> SSE "event:result"
//                        events with incremental_output, errors {"code", "message"})
//   Hugging Face TGI     POST /generate, POST /generate_stream (Authorization: Bearer, as
//                        Inference Endpoints; {"inputs", "parameters"}): "inputs" must be a
//                        ChatML, Llama 3 or Zephyr prompt ending in the assistant's turn (the
//                        answer's label names the template: "[tgi:chatml] text"); TGI's
//                        validation (422), x-prompt-tokens/x-generated-tokens headers, SSE
//                        "data:{token, generated_text, details}" events, errors {"error",
//                        "error_type"} (also as a stream event)
//   AWS STS              POST / Action=AssumeRoleWithWebIdentity (form; WebIdentityToken must
//                        be --web-identity-token) -> XML with temporary credentials, which
//                        Bedrock requests may then sign with (X-Amz-Security-Token signed)
//   Token answers take 200 ms (so concurrent requests overlap a fetch); tokens are valid
//   3600 s, or 8 s for Entra client ids starting "short-". Issued tokens are counted:
//   GET /_tokens -> {"entra": N, "google": N, "sts": N}.
//   GET /health
//
// --port 0 lets the kernel choose; once listening, "LISTENING <port>" is printed.
// --key KEY: the credential each provider must receive (its own header); else 401 in that
// provider's error format.
//
// The answer echoes the last user text: "[<provider>:<model>] <text>" (so tests see what
// the provider received, e.g. masked data). Test hooks in that text:
//   TOOL        the model calls the tool "get_weather" with {"city":"Paris"}
//   CHUNKS:N    a stream of N content pieces ("w0 ", "w1 ", ...), N <= 100000
//   FAIL_MIDSTREAM  the stream sends two pieces then the provider's error event
//   SLOW        200 ms between stream pieces (for client disconnects)
//   STATUS:NNN  answer with that HTTP status and the provider's error body
// Usage: prompt tokens = ceil(characters of the request's messages / 4), completion
// tokens = the number of pieces.
//
// Diagnostics: GET /_last returns the last request seen {path, headers (credential
// headers replaced by "present"), body}.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');

const opts = { port: 0, host: '127.0.0.1', key: null, ak: null, secret: null, delay: 0,
	entraId: null, entraSecret: null, googleKey: null, googleEmail: null, webToken: null, tcId: null, tcKey: null };
for (let i = 2; i < process.argv.length; i += 2) {
	const a = process.argv[i], v = process.argv[i + 1];
	if (v === undefined) { process.stderr.write(`mock-providers: ${a} needs a value\n`); process.exit(2); }
	if (a === '--port') opts.port = Number(v);
	else if (a === '--host') opts.host = v;
	else if (a === '--key') opts.key = v;
	else if (a === '--aws-access-key') opts.ak = v;
	else if (a === '--aws-secret') opts.secret = v;
	else if (a === '--chunk-delay-ms') opts.delay = Number(v);
	else if (a === '--entra-client') [opts.entraId, opts.entraSecret] = [v.split(':')[0], v.split(':').slice(1).join(':')];
	else if (a === '--google-key') opts.googleKey = crypto.createPublicKey(require('node:fs').readFileSync(v));
	else if (a === '--google-email') opts.googleEmail = v;
	else if (a === '--web-identity-token') opts.webToken = v;
	else if (a === '--tc-secret') [opts.tcId, opts.tcKey] = [v.split(':')[0], v.split(':').slice(1).join(':')];
	else { process.stderr.write(`mock-providers: unknown option ${a}\n`); process.exit(2); }
}

const MAX_BODY = 8 * 1024 * 1024;
const issued = new Map(); // access token -> expiry (ms)
const tokenCounts = { entra: 0, google: 0, sts: 0 };
const tempCreds = new Map(); // STS access key id -> { secret, token, expires (ms) }
let last = null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function lastUserText(texts) {
	return texts.length ? texts[texts.length - 1] : '';
}

// The reply: pieces of text (or a tool call), from the prompt's hooks.
function plan(provider, model, text) {
	const m = /CHUNKS:(\d+)/.exec(text);
	const status = /STATUS:(\d{3})/.exec(text);
	let pieces;
	if (m) {
		const n = Math.min(Number(m[1]), 100000);
		pieces = Array.from({ length: n }, (_, i) => `w${i} `);
	} else {
		const full = `[${provider}:${model}] ${text}`;
		pieces = full.match(/\S+\s*/g) || [''];
	}
	return {
		pieces,
		tool: text.includes('TOOL'),
		fail: text.includes('FAIL_MIDSTREAM'),
		slow: text.includes('SLOW') ? 200 : opts.delay,
		status: status ? Number(status[1]) : 0,
	};
}

function promptTokens(obj) {
	return Math.ceil(JSON.stringify(obj || '').length / 4);
}

function json(res, status, body, headers = {}) {
	const s = JSON.stringify(body);
	res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
	res.end(s);
}

// ---- Anthropic -------------------------------------------------------------------------

function anthropicError(res, status, type, message) {
	json(res, status, { type: 'error', error: { type, message } });
}

function anthropicTexts(body) {
	const out = [];
	for (const m of body.messages || []) {
		if (m.role !== 'user') continue;
		if (typeof m.content === 'string') out.push(m.content);
		else for (const b of m.content || []) if (b.type === 'text') out.push(b.text);
	}
	return out;
}

async function anthropic(req, res, body, vertexModel) {
	if (vertexModel) {
		if (!bearerValid(req)) return anthropicError(res, 401, 'authentication_error', 'invalid access token');
		if (body.anthropic_version !== 'vertex-2023-10-16' || body.model !== undefined)
			return anthropicError(res, 400, 'invalid_request_error', 'anthropic_version must be vertex-2023-10-16 and model absent');
		body.model = vertexModel;
	} else if (req.headers['anthropic-version'] !== '2023-06-01') {
		return anthropicError(res, 400, 'invalid_request_error', 'anthropic-version header is required');
	} else if (opts.key && req.headers['x-api-key'] !== opts.key) {
		return anthropicError(res, 401, 'authentication_error', 'invalid x-api-key');
	}
	if (typeof body.max_tokens !== 'number')
		return anthropicError(res, 400, 'invalid_request_error', 'max_tokens: Field required');
	const p = plan('anthropic', body.model, lastUserText(anthropicTexts(body)));
	if (p.status === 529) return anthropicError(res, 529, 'overloaded_error', 'Overloaded');
	if (p.status) return anthropicError(res, p.status, 'api_error', `status ${p.status} requested`);
	const id = 'msg_' + crypto.randomBytes(8).toString('hex');
	const input = promptTokens(body.messages);
	const stop = p.tool ? 'tool_use' : 'end_turn';
	if (!body.stream) {
		const content = [{ type: 'text', text: p.pieces.join('') }];
		if (p.tool) content.push({ type: 'tool_use', id: 'toolu_mock1', name: 'get_weather', input: { city: 'Paris' } });
		return json(res, 200, { id, type: 'message', role: 'assistant', model: body.model, content,
			stop_reason: stop, stop_sequence: null, usage: { input_tokens: input, output_tokens: p.pieces.length } });
	}
	res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
	const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
	ev('message_start', { message: { id, type: 'message', role: 'assistant', content: [], model: body.model,
		stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } } });
	ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
	ev('ping', {});
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		if (p.fail && i === 2) {
			ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
			return res.end();
		}
		ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: p.pieces[i] } });
		if (p.slow) await sleep(p.slow);
	}
	ev('content_block_stop', { index: 0 });
	if (p.tool) {
		ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_mock1', name: 'get_weather', input: {} } });
		ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } });
		ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: ' "Paris"}' } });
		ev('content_block_stop', { index: 1 });
	}
	ev('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: p.pieces.length } });
	ev('message_stop', {});
	res.end();
}

// ---- Gemini ----------------------------------------------------------------------------

function geminiError(res, status, message) {
	const st = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
	json(res, status, { error: { code: status, message, status: st[status] || 'UNKNOWN' } });
}

async function gemini(req, res, body, model, method, url, vertex) {
	if (vertex && !bearerValid(req))
		return geminiError(res, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
	if (!vertex && opts.key && req.headers['x-goog-api-key'] !== opts.key)
		return geminiError(res, 403, 'API key not valid. Please pass a valid API key.');
	if (method === 'embedContent' || method === 'batchEmbedContents') {
		const reqs = method === 'embedContent' ? [body] : body.requests || [];
		const embs = reqs.map((r) => {
			const t = ((r.content || {}).parts || []).map((x) => x.text || '').join('');
			return { values: [t.length, 0.5, -0.5] };
		});
		return json(res, 200, method === 'embedContent' ? { embedding: embs[0] } : { embeddings: embs });
	}
	const texts = [];
	for (const c of body.contents || []) if (c.role === 'user') for (const part of c.parts || []) if (part.text) texts.push(part.text);
	const p = plan('gemini', model, lastUserText(texts));
	if (p.status) return geminiError(res, p.status, `status ${p.status} requested`);
	const prompt = promptTokens(body.contents);
	const usage = (n) => ({ promptTokenCount: prompt, candidatesTokenCount: n, totalTokenCount: prompt + n });
	if (method === 'generateContent') {
		const parts = [{ text: p.pieces.join('') }];
		if (p.tool) parts.push({ functionCall: { name: 'get_weather', args: { city: 'Paris' } } });
		return json(res, 200, { candidates: [{ content: { parts, role: 'model' }, finishReason: 'STOP', index: 0 }],
			usageMetadata: usage(p.pieces.length), modelVersion: model });
	}
	if (method !== 'streamGenerateContent' || url.searchParams.get('alt') !== 'sse')
		return geminiError(res, 400, 'unsupported method or missing alt=sse');
	res.writeHead(200, { 'content-type': 'text/event-stream' });
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		if (p.fail && i === 2) {
			res.write(`data: ${JSON.stringify({ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } })}\r\n\r\n`);
			return res.end();
		}
		const lastPiece = i === p.pieces.length - 1;
		const parts = [{ text: p.pieces[i] }];
		if (lastPiece && p.tool) parts.push({ functionCall: { name: 'get_weather', args: { city: 'Paris' } } });
		const cand = { content: { parts, role: 'model' }, index: 0 };
		if (lastPiece) cand.finishReason = 'STOP';
		res.write(`data: ${JSON.stringify({ candidates: [cand], usageMetadata: usage(i + 1), modelVersion: model })}\r\n\r\n`);
		if (p.slow) await sleep(p.slow);
	}
	res.end();
}

// ---- access tokens: Entra ID and Google service accounts --------------------------------

function bearerValid(req) {
	const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
	return !!m && issued.has(m[1]) && issued.get(m[1]) > Date.now();
}

function issue(kind, ttl) {
	tokenCounts[kind]++;
	const token = `${kind}-${tokenCounts[kind]}-${crypto.randomBytes(12).toString('hex')}`;
	issued.set(token, Date.now() + ttl * 1000);
	return { token_type: 'Bearer', expires_in: ttl, access_token: token };
}

async function entraToken(res, raw) {
	const f = new URLSearchParams(raw.toString('utf8'));
	await sleep(200);
	if (f.get('grant_type') !== 'client_credentials' || !f.get('scope'))
		return json(res, 400, { error: 'unsupported_grant_type', error_description: 'AADSTS70003: grant_type and scope are required.' });
	const id = f.get('client_id') || '', ok = opts.entraId && (id === opts.entraId || id === `short-${opts.entraId}`);
	if (!ok || f.get('client_secret') !== opts.entraSecret)
		return json(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
	json(res, 200, { ...issue('entra', id.startsWith('short-') ? 8 : 3600), ext_expires_in: 3600 });
}

function b64urlJson(s) {
	return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

async function googleToken(req, res, raw) {
	const f = new URLSearchParams(raw.toString('utf8'));
	await sleep(200);
	const bad = (d) => json(res, 400, { error: 'invalid_grant', error_description: d });
	if (f.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return bad('Invalid grant_type.');
	const parts = (f.get('assertion') || '').split('.');
	if (parts.length !== 3 || !opts.googleKey) return bad('Invalid JWT.');
	let head, claims;
	try {
		[head, claims] = [b64urlJson(parts[0]), b64urlJson(parts[1])];
	} catch {
		return bad('Invalid JWT.');
	}
	const signed = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), opts.googleKey, Buffer.from(parts[2], 'base64url'));
	const now = Math.floor(Date.now() / 1000);
	if (head.alg !== 'RS256' || !signed) return bad('Invalid JWT Signature.');
	if (claims.iss !== opts.googleEmail) return bad('Invalid issuer.');
	if (claims.aud !== `http://${req.headers.host}/token`) return bad('Invalid JWT audience.');
	if (!/cloud-platform/.test(claims.scope || '')) return bad('Invalid scope.');
	if (!(claims.iat <= now + 60 && claims.exp > now && claims.exp - claims.iat <= 3600))
		return bad('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.');
	json(res, 200, issue('google', 3600));
}

async function stsAssume(res, raw) {
	const f = new URLSearchParams(raw.toString('utf8'));
	await sleep(200);
	const xmlErr = (status, code, message) => {
		const s = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`;
		res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(s) });
		res.end(s);
	};
	if (f.get('Action') !== 'AssumeRoleWithWebIdentity' || f.get('Version') !== '2011-06-15')
		return xmlErr(400, 'InvalidAction', 'Could not find operation for this action.');
	if (!/^arn:aws:iam::\d{12}:role\/.+/.test(f.get('RoleArn') || '') || !f.get('RoleSessionName'))
		return xmlErr(400, 'ValidationError', 'RoleArn and RoleSessionName are required.');
	if (!opts.webToken || f.get('WebIdentityToken') !== opts.webToken)
		return xmlErr(400, 'InvalidIdentityToken', 'Couldn\'t retrieve verification key from your identity provider.');
	tokenCounts.sts++;
	const ak = 'ASIA' + crypto.randomBytes(8).toString('hex').toUpperCase();
	const secret = crypto.randomBytes(20).toString('base64');
	const token = 'IQoJb3JpZ2luX2Vj' + crypto.randomBytes(48).toString('base64');
	const expires = Date.now() + 3600 * 1000;
	tempCreds.set(ak, { secret, token, expires });
	const s = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:jairouter:gateway</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>${f.get('RoleArn').replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${f.get('RoleSessionName')}</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:${f.get('RoleSessionName')}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${token}</SessionToken>
      <SecretAccessKey>${secret}</SecretAccessKey>
      <Expiration>${new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z')}</Expiration>
      <AccessKeyId>${ak}</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/MOCK</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`;
	res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(s) });
	res.end(s);
}

// ---- Tencent Hunyuan (native API, TC3-HMAC-SHA256) ---------------------------------------

// Recomputes the TC3 signature (Tencent Cloud's signature v3). Null when valid.
function tc3Problem(req, raw) {
	const m = /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([^/]+)\/tc3_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(req.headers.authorization || '');
	if (!m) return 'missing or malformed TC3 Authorization';
	const [, id, date, service, signed, sig] = m;
	const ts = Number(req.headers['x-tc-timestamp']);
	if (id !== opts.tcId) return 'unknown SecretId';
	if (!ts || Math.abs(Date.now() / 1000 - ts) > 300) return 'X-TC-Timestamp missing or too far from now';
	if (new Date(ts * 1000).toISOString().slice(0, 10) !== date) return 'the credential date is not the timestamp\'s';
	const headers = signed.split(';').map((n) => `${n}:${String(req.headers[n] || '').trim().toLowerCase()}\n`).join('');
	const creq = ['POST', '/', '', headers, signed, sha256(raw)].join('\n');
	const sts = ['TC3-HMAC-SHA256', String(ts), `${date}/${service}/tc3_request`, sha256(creq)].join('\n');
	const k = hmac(hmac(hmac('TC3' + opts.tcKey, date), service), 'tc3_request');
	return crypto.timingSafeEqual(Buffer.from(hmac(k, sts).toString('hex')), Buffer.from(sig)) ? null : 'signature mismatch';
}

async function hunyuan(req, res, body, raw) {
	const rid = crypto.randomUUID();
	const fail = (code, message) => json(res, 200, { Response: { Error: { Code: code, Message: message }, RequestId: rid } });
	if (req.headers['x-tc-action'] !== 'ChatCompletions' || req.headers['x-tc-version'] !== '2023-09-01')
		return fail('InvalidAction', 'X-TC-Action ChatCompletions with X-TC-Version 2023-09-01 expected');
	const problem = opts.tcId ? tc3Problem(req, raw) : null;
	if (problem) return fail('AuthFailure.SignatureFailure', `The provided credentials could not be validated (${problem}).`);
	if (!body.Model || !Array.isArray(body.Messages) || !body.Messages.length)
		return fail('MissingParameter', 'Model and Messages are required.');
	const texts = body.Messages.filter((m) => m.Role === 'user').map((m) => m.Content || '');
	const p = plan('hunyuan', body.Model, lastUserText(texts));
	if (p.status === 429) return fail('LimitExceeded', 'Request frequency exceeds the limit.');
	const prompt = promptTokens(body.Messages);
	const usage = (n) => ({ PromptTokens: prompt, CompletionTokens: n, TotalTokens: prompt + n });
	const created = Math.floor(Date.now() / 1000);
	if (!body.Stream)
		return json(res, 200, { Response: { RequestId: rid, Note: 'mock', Id: rid, Created: created, Usage: usage(p.pieces.length),
			Choices: [{ FinishReason: 'stop', Message: { Role: 'assistant', Content: p.pieces.join('') } }] } });
	res.writeHead(200, { 'content-type': 'text/event-stream' });
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		const last = i === p.pieces.length - 1;
		res.write(`data: ${JSON.stringify({ Note: 'mock', Choices: [{ Delta: { Role: 'assistant', Content: p.pieces[i] },
			FinishReason: last ? 'stop' : '' }], Created: created, Id: rid, Usage: usage(i + 1) })}\n\n`);
		if (p.slow) await sleep(p.slow);
	}
	res.end();
}

// ---- Hugging Face Text Generation Inference (native /generate) --------------------------

// The chat templates the mock recognises: the last user turn of the prompt and whether
// the prompt ends with the assistant's opening.
const TGI_TEMPLATES = [
	{ name: 'chatml', user: /<\|im_start\|>user\n([\s\S]*?)<\|im_end\|>\n/g, tail: '<|im_start|>assistant\n' },
	{ name: 'llama3', user: /<\|start_header_id\|>user<\|end_header_id\|>\n\n([\s\S]*?)<\|eot_id\|>/g,
		tail: '<|start_header_id|>assistant<|end_header_id|>\n\n', head: '<|begin_of_text|>' },
	{ name: 'zephyr', user: /<\|user\|>\n([\s\S]*?)<\/s>\n/g, tail: '<|assistant|>\n' },
];

function tgiPrompt(inputs) {
	for (const t of TGI_TEMPLATES) {
		if (!inputs.endsWith(t.tail) || (t.head && !inputs.startsWith(t.head))) continue;
		const users = [...inputs.matchAll(t.user)].map((m) => m[1]);
		if (users.length) return { template: t.name, text: users[users.length - 1] };
	}
	return null;
}

// TGI's validation (router/src/validation.rs): 422 {"error", "error_type": "validation"}.
function tgiInvalid(body) {
	const p = body.parameters || {};
	if (typeof body.inputs !== 'string' || !body.inputs) return '`inputs` cannot be empty';
	if (p.temperature !== undefined && !(p.temperature > 0)) return '`temperature` must be strictly positive';
	if (p.top_p !== undefined && !(p.top_p > 0 && p.top_p < 1)) return '`top_p` must be > 0.0 and < 1.0';
	if (p.top_k !== undefined && !(p.top_k > 0)) return '`top_k` must be strictly positive';
	if (p.max_new_tokens !== undefined && !(p.max_new_tokens > 0)) return '`max_new_tokens` must be strictly positive';
	if (Array.isArray(p.stop) && p.stop.length > 4) return '`stop` supports up to 4 stop sequences. Given: ' + p.stop.length;
	return null;
}

async function tgi(req, res, body, stream) {
	const err = (status, error_type, error) => json(res, status, { error, error_type });
	if (opts.key && req.headers.authorization !== `Bearer ${opts.key}`)
		return err(401, 'authentication', 'Authorization header is correct, but the token seems invalid');
	const invalid = tgiInvalid(body);
	if (invalid) return err(422, 'validation', invalid);
	const prompt = tgiPrompt(body.inputs);
	if (!prompt) return err(422, 'validation', 'the mock takes ChatML, Llama 3 or Zephyr prompts ending in the assistant turn');
	if ((body.parameters || {}).details !== true) return err(422, 'validation', 'the mock answers with details only');
	const p = plan('tgi', prompt.template, prompt.text);
	if (p.status === 429) return err(429, 'overloaded', 'Model is overloaded');
	if (p.status) return err(p.status, 'generation', `Request failed during generation: status ${p.status} requested`);
	const input = Math.ceil(body.inputs.length / 4), text = p.pieces.join(''), n = p.pieces.length + 1;
	const counts = { 'x-compute-type': 'mock', 'x-prompt-tokens': String(input), 'x-generated-tokens': String(n) };
	const token = (i, t, special) => ({ id: 1000 + i, text: t, logprob: -0.25, special });
	if (!stream) {
		const tokens = p.pieces.map((t, i) => token(i, t, false)).concat([token(n, '<|im_end|>', true)]);
		return json(res, 200, { generated_text: text, details: { finish_reason: 'eos_token', generated_tokens: n, seed: null,
			prefill: [], tokens } }, counts);
	}
	res.writeHead(200, { 'content-type': 'text/event-stream', 'x-compute-type': 'mock', 'x-accel-buffering': 'no' });
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		if (p.fail && i === 2) {
			res.write(`data:${JSON.stringify({ error: 'Request failed during generation: Server error: CUDA out of memory', error_type: 'generation' })}\n\n`);
			return res.end();
		}
		res.write(`data:${JSON.stringify({ index: i + 1, token: token(i, p.pieces[i], false), generated_text: null, details: null })}\n\n`);
		if (p.slow) await sleep(p.slow);
	}
	res.write(`data:${JSON.stringify({ index: n, token: token(n, '<|im_end|>', true), generated_text: text,
		details: { finish_reason: 'eos_token', generated_tokens: n, seed: null, input_length: input } })}\n\n`);
	res.end();
}

// ---- Alibaba DashScope (native text generation) -----------------------------------------

async function dashscope(req, res, body) {
	const rid = crypto.randomUUID();
	const err = (status, code, message) => json(res, status, { code, message, request_id: rid });
	if (opts.key && req.headers.authorization !== `Bearer ${opts.key}`)
		return err(401, 'InvalidApiKey', 'Invalid API-key provided.');
	const messages = (body.input || {}).messages, params = body.parameters || {};
	if (!body.model || !Array.isArray(messages) || !messages.length)
		return err(400, 'InvalidParameter', 'model and input.messages are required');
	if (params.result_format !== 'message') return err(400, 'InvalidParameter', 'result_format must be message');
	const texts = messages.filter((m) => m.role === 'user').map((m) => (typeof m.content === 'string' ? m.content : ''));
	const p = plan('dashscope', body.model, lastUserText(texts));
	if (p.status === 429) return err(429, 'Throttling.RateQuota', 'Requests rate limit exceeded, please try again later.');
	const input = promptTokens(messages);
	const usage = (n) => ({ total_tokens: input + n, input_tokens: input, output_tokens: n });
	const call = { index: 0, id: 'call_mock1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
	if (req.headers['x-dashscope-sse'] !== 'enable') {
		const message = { role: 'assistant', content: p.pieces.join('') };
		if (p.tool) message.tool_calls = [call];
		return json(res, 200, { output: { choices: [{ finish_reason: p.tool ? 'tool_calls' : 'stop', message }] },
			usage: usage(p.pieces.length), request_id: rid });
	}
	if (params.incremental_output !== true) return err(400, 'InvalidParameter', 'the mock streams with incremental_output only');
	res.writeHead(200, { 'content-type': 'text/event-stream;charset=UTF-8' });
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		if (p.fail && i === 2) {
			res.write(`id:${i + 1}\nevent:error\n:HTTP_STATUS/500\ndata:${JSON.stringify({ code: 'InternalError', message: 'Internal server error.', request_id: rid })}\n\n`);
			return res.end();
		}
		const last = i === p.pieces.length - 1;
		const message = { content: p.pieces[i], role: 'assistant' };
		if (last && p.tool) message.tool_calls = [call];
		res.write(`id:${i + 1}\nevent:result\n:HTTP_STATUS/200\ndata:${JSON.stringify({ output: { choices: [{ message,
			finish_reason: last ? (p.tool ? 'tool_calls' : 'stop') : 'null' }] }, usage: usage(i + 1), request_id: rid })}\n\n`);
		if (p.slow) await sleep(p.slow);
	}
	res.end();
}

// ---- Azure OpenAI (OpenAI's chat format) ------------------------------------------------

async function azure(req, res, body, deployment, url) {
	const err = (status, code, message) => json(res, status, { error: { code, message } });
	if (!url.searchParams.get('api-version')) return err(404, 'NotFound', 'api-version is required');
	if (!bearerValid(req) && !(opts.key && req.headers['api-key'] === opts.key))
		return err(401, '401', 'Access denied due to invalid subscription key or wrong API endpoint.');
	const texts = (body.messages || []).filter((m) => m.role === 'user').map((m) => (typeof m.content === 'string' ? m.content : ''));
	const p = plan('azure', deployment, lastUserText(texts));
	if (p.status) return err(p.status, String(p.status), `status ${p.status} requested`);
	const id = 'chatcmpl-' + crypto.randomBytes(8).toString('hex'), created = Math.floor(Date.now() / 1000);
	const usage = { prompt_tokens: promptTokens(body.messages), completion_tokens: p.pieces.length, total_tokens: 0 };
	usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
	if (!body.stream)
		return json(res, 200, { id, object: 'chat.completion', created, model: deployment, usage,
			choices: [{ index: 0, message: { role: 'assistant', content: p.pieces.join('') }, finish_reason: 'stop' }] });
	res.writeHead(200, { 'content-type': 'text/event-stream' });
	const chunk = (delta, finish) => res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created,
		model: deployment, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
	chunk({ role: 'assistant', content: '' }, null);
	for (const piece of p.pieces) chunk({ content: piece }, null);
	chunk({}, 'stop');
	if ((body.stream_options || {}).include_usage)
		res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: deployment, choices: [], usage })}\n\n`);
	res.write('data: [DONE]\n\n');
	res.end();
}

// ---- Bedrock ---------------------------------------------------------------------------

const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// Recomputes the SigV4 signature of the request (AWS's algorithm, independently of the
// adapter's C code). Returns null when valid, else a message.
function sigv4Problem(req, raw) {
	const auth = req.headers.authorization || '';
	const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
	if (!m) return 'missing or malformed SigV4 Authorization';
	const [, ak, date, region, service, signed, sig] = m;
	let secretKey = opts.secret;
	if (tempCreds.has(ak)) {
		// Temporary credentials: the session token must be sent, and signed.
		const t = tempCreds.get(ak);
		if (t.expires < Date.now()) return 'expired temporary credentials';
		if (req.headers['x-amz-security-token'] !== t.token) return 'missing or wrong X-Amz-Security-Token';
		if (!signed.split(';').includes('x-amz-security-token')) return 'X-Amz-Security-Token is not signed';
		secretKey = t.secret;
	} else if (ak !== opts.ak) {
		return 'unknown access key';
	}
	const amzDate = req.headers['x-amz-date'] || '';
	if (amzDate.slice(0, 8) !== date) return 'x-amz-date does not match the credential scope';
	const path = req.url.split('?')[0].split('/').map((seg) => enc(seg)).join('/');
	const names = signed.split(';');
	const canonHeaders = names.map((n) => `${n}:${String(req.headers[n] || '').trim()}\n`).join('');
	const creq = ['POST', path, '', canonHeaders, signed, sha256(raw)].join('\n');
	const scope = `${date}/${region}/${service}/aws4_request`;
	const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(creq)].join('\n');
	const k = hmac(hmac(hmac(hmac('AWS4' + secretKey, date), region), service), 'aws4_request');
	const want = hmac(k, sts).toString('hex');
	return crypto.timingSafeEqual(Buffer.from(want), Buffer.from(sig)) ? null : 'signature mismatch';
}

let crcTable = null;
function crc32(buf) {
	if (!crcTable) {
		crcTable = new Uint32Array(256);
		for (let i = 0; i < 256; i++) {
			let c = i;
			for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
			crcTable[i] = c >>> 0;
		}
	}
	let c = 0xffffffff;
	for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

// One event-stream message with string headers.
function esMessage(headers, payload) {
	const hb = [];
	for (const [k, v] of Object.entries(headers)) {
		const kb = Buffer.from(k), vb = Buffer.from(v);
		hb.push(Buffer.from([kb.length]), kb, Buffer.from([7, vb.length >> 8, vb.length & 0xff]), vb);
	}
	const h = Buffer.concat(hb), p = Buffer.from(payload);
	const total = 16 + h.length + p.length;
	const prelude = Buffer.alloc(8);
	prelude.writeUInt32BE(total, 0);
	prelude.writeUInt32BE(h.length, 4);
	const pc = Buffer.alloc(4);
	pc.writeUInt32BE(crc32(prelude), 0);
	const body = Buffer.concat([prelude, pc, h, p]);
	const mc = Buffer.alloc(4);
	mc.writeUInt32BE(crc32(body), 0);
	return Buffer.concat([body, mc]);
}

const esEvent = (type, obj) => esMessage({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' }, JSON.stringify(obj));

async function bedrock(req, res, body, raw, model, op) {
	if (opts.ak) {
		const problem = sigv4Problem(req, raw);
		if (problem) return json(res, 403, { message: `The request signature we calculated does not match (${problem}).` },
			{ 'x-amzn-errortype': 'UnrecognizedClientException' });
	}
	const texts = [];
	for (const m of body.messages || []) if (m.role === 'user') for (const c of m.content || []) if (c.text) texts.push(c.text);
	const p = plan('bedrock', model, lastUserText(texts));
	if (p.status === 429) return json(res, 429, { message: 'Too many requests, please wait before trying again.' }, { 'x-amzn-errortype': 'ThrottlingException' });
	if (p.status) return json(res, p.status, { message: `status ${p.status} requested` });
	const input = promptTokens(body.messages);
	const stop = p.tool ? 'tool_use' : 'end_turn';
	if (op === 'converse') {
		const content = [{ text: p.pieces.join('') }];
		if (p.tool) content.push({ toolUse: { toolUseId: 'tooluse_mock1', name: 'get_weather', input: { city: 'Paris' } } });
		return json(res, 200, { output: { message: { role: 'assistant', content } }, stopReason: stop,
			usage: { inputTokens: input, outputTokens: p.pieces.length, totalTokens: input + p.pieces.length }, metrics: { latencyMs: 1 } });
	}
	res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
	res.write(esEvent('messageStart', { role: 'assistant', p: 'abcd' }));
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		if (p.fail && i === 2) {
			res.write(esMessage({ ':exception-type': 'modelStreamErrorException', ':content-type': 'application/json', ':message-type': 'exception' },
				JSON.stringify({ message: 'The model stream failed.' })));
			return res.end();
		}
		res.write(esEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: p.pieces[i] }, p: 'ab' }));
		if (p.slow) await sleep(p.slow);
	}
	res.write(esEvent('contentBlockStop', { contentBlockIndex: 0 }));
	if (p.tool) {
		res.write(esEvent('contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'tooluse_mock1', name: 'get_weather' } } }));
		res.write(esEvent('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"city": "Paris"}' } } }));
		res.write(esEvent('contentBlockStop', { contentBlockIndex: 1 }));
	}
	res.write(esEvent('messageStop', { stopReason: stop }));
	res.write(esEvent('metadata', { usage: { inputTokens: input, outputTokens: p.pieces.length, totalTokens: input + p.pieces.length }, metrics: { latencyMs: 1 } }));
	res.end();
}

// ---- Cohere chat v2 --------------------------------------------------------------------

// An embedding vector of a text: [its length, 0.5, -0.5] (tests see what was embedded).
const vectorOf = (t) => [t.length, 0.5, -0.5];

async function cohereEmbed(req, res, body) {
	if (opts.key && req.headers.authorization !== `Bearer ${opts.key}`)
		return json(res, 401, { message: 'invalid api token' });
	if (!Array.isArray(body.texts) || !body.texts.length || body.texts.length > 96 || !body.model)
		return json(res, 400, { message: 'invalid request: texts must be an array of 1 to 96 strings and model is required' });
	if (!['search_document', 'search_query', 'classification', 'clustering'].includes(body.input_type))
		return json(res, 400, { message: 'invalid request: input_type is required for embed models v3 and higher' });
	const tokens = body.texts.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
	json(res, 200, { id: crypto.randomUUID(), embeddings: { float: body.texts.map(vectorOf) }, texts: body.texts,
		meta: { api_version: { version: '2' }, billed_units: { input_tokens: tokens } } });
}

async function bedrockEmbed(req, res, body, raw, model) {
	if (opts.ak) {
		const problem = sigv4Problem(req, raw);
		if (problem) return json(res, 403, { message: `The request signature we calculated does not match (${problem}).` },
			{ 'x-amzn-errortype': 'UnrecognizedClientException' });
	}
	if (model.includes('cohere.')) {
		if (!Array.isArray(body.texts) || !body.input_type)
			return json(res, 400, { message: 'Malformed input request: texts and input_type are required' }, { 'x-amzn-errortype': 'ValidationException' });
		const tokens = body.texts.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
		return json(res, 200, { embeddings: body.texts.map(vectorOf), id: crypto.randomUUID(), response_type: 'embeddings_floats', texts: body.texts },
			{ 'x-amzn-bedrock-input-token-count': String(tokens) });
	}
	if (typeof body.inputText !== 'string')
		return json(res, 400, { message: 'Malformed input request: required key [inputText] not found' }, { 'x-amzn-errortype': 'ValidationException' });
	json(res, 200, { embedding: vectorOf(body.inputText), inputTextTokenCount: Math.ceil(body.inputText.length / 4) });
}

async function cohere(req, res, body) {
	if (opts.key && req.headers.authorization !== `Bearer ${opts.key}`)
		return json(res, 401, { message: 'invalid api token' });
	const texts = (body.messages || []).filter((m) => m.role === 'user').map((m) => (typeof m.content === 'string' ? m.content : ''));
	const p = plan('cohere', body.model, lastUserText(texts));
	const input = promptTokens(body.messages);
	const usage = { billed_units: { input_tokens: input, output_tokens: p.pieces.length }, tokens: { input_tokens: input, output_tokens: p.pieces.length } };
	if (!body.stream)
		return json(res, 200, { id: 'c-' + crypto.randomBytes(4).toString('hex'), finish_reason: 'COMPLETE',
			message: { role: 'assistant', content: [{ type: 'text', text: p.pieces.join('') }] }, usage });
	res.writeHead(200, { 'content-type': 'text/event-stream' });
	const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
	ev('message-start', { id: 'c1', delta: { message: { role: 'assistant' } } });
	for (const piece of p.pieces) ev('content-delta', { index: 0, delta: { message: { content: { text: piece } } } });
	ev('message-end', { delta: { finish_reason: 'COMPLETE', usage } });
	res.end();
}

// ---- Ollama native API -----------------------------------------------------------------

async function ollama(req, res, body, op) {
	if (opts.key && req.headers.authorization !== `Bearer ${opts.key}`)
		return json(res, 401, { error: 'unauthorized' });
	if (op === 'embed') {
		const inputs = Array.isArray(body.input) ? body.input : [body.input];
		return json(res, 200, { model: body.model, embeddings: inputs.map((t) => [String(t).length, 0.25]),
			prompt_eval_count: inputs.join('').length });
	}
	const texts = (body.messages || []).filter((m) => m.role === 'user').map((m) => m.content || '');
	const p = plan('ollama', body.model, lastUserText(texts));
	if (p.status) return json(res, p.status, { error: `status ${p.status} requested` });
	const prompt = promptTokens(body.messages);
	const calls = p.tool ? [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] : undefined;
	const created_at = new Date().toISOString();
	if (body.stream === false) {
		return json(res, 200, { model: body.model, created_at, message: { role: 'assistant', content: p.pieces.join(''), tool_calls: calls },
			done_reason: 'stop', done: true, prompt_eval_count: prompt, eval_count: p.pieces.length });
	}
	// Ollama streams unless told not to: NDJSON, one object per line.
	res.writeHead(200, { 'content-type': 'application/x-ndjson' });
	for (let i = 0; i < p.pieces.length; i++) {
		if (res.destroyed) return;
		if (p.fail && i === 2) {
			res.write(JSON.stringify({ error: 'model runner has unexpectedly stopped' }) + '\n');
			return res.end();
		}
		res.write(JSON.stringify({ model: body.model, created_at, message: { role: 'assistant', content: p.pieces[i] }, done: false }) + '\n');
		if (p.slow) await sleep(p.slow);
	}
	if (calls) res.write(JSON.stringify({ model: body.model, created_at, message: { role: 'assistant', content: '', tool_calls: calls }, done: false }) + '\n');
	res.write(JSON.stringify({ model: body.model, created_at, message: { role: 'assistant', content: '' }, done_reason: 'stop', done: true,
		prompt_eval_count: prompt, eval_count: p.pieces.length }) + '\n');
	res.end();
}

// ---- server ----------------------------------------------------------------------------

const server = http.createServer((req, res) => {
	const chunks = [];
	let size = 0;
	req.on('data', (c) => {
		size += c.length;
		if (size > MAX_BODY) req.destroy();
		else chunks.push(c);
	});
	req.on('end', async () => {
		const raw = Buffer.concat(chunks);
		const url = new URL(req.url, 'http://mock');
		if (req.method === 'GET' && url.pathname === '/health') return json(res, 200, { status: 'ok' });
		if (req.method === 'GET' && url.pathname === '/_last') return json(res, 200, last);
		if (req.method === 'GET' && url.pathname === '/_tokens') return json(res, 200, tokenCounts);
		if (req.method === 'POST' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(url.pathname)) return entraToken(res, raw);
		if (req.method === 'POST' && url.pathname === '/token') return googleToken(req, res, raw);
		if (req.method === 'POST' && url.pathname === '/' && /Action=AssumeRoleWithWebIdentity/.test(raw.toString('utf8')))
			return stsAssume(res, raw);
		let body;
		try {
			body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
		} catch {
			return json(res, 400, { error: { message: 'invalid JSON' } });
		}
		const hdrs = { ...req.headers };
		for (const h of ['authorization', 'x-api-key', 'x-goog-api-key', 'api-key']) if (hdrs[h]) hdrs[h] = 'present';
		last = { path: req.url, headers: hdrs, body };
		try {
			let m;
			if (req.method === 'POST' && url.pathname === '/v1/messages') return await anthropic(req, res, body);
			if (req.method === 'POST' && (m = /^\/v1beta\/models\/([^/:]+):(\w+)$/.exec(url.pathname)))
				return await gemini(req, res, body, decodeURIComponent(m[1]), m[2], url);
			if (req.method === 'POST' && (m = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(url.pathname)))
				return await bedrock(req, res, body, raw, decodeURIComponent(m[1]), m[2]);
			if (req.method === 'POST' && url.pathname === '/v2/chat') return await cohere(req, res, body);
			if (req.method === 'POST' && url.pathname === '/v2/embed') return await cohereEmbed(req, res, body);
			if (req.method === 'POST' && url.pathname === '/api/v1/services/aigc/text-generation/generation') return await dashscope(req, res, body);
			if (req.method === 'POST' && (url.pathname === '/generate' || url.pathname === '/generate_stream'))
				return await tgi(req, res, body, url.pathname === '/generate_stream');
			if (req.method === 'POST' && url.pathname === '/' && req.headers['x-tc-action']) return await hunyuan(req, res, body, raw);
			if (req.method === 'POST' && (m = /^\/model\/([^/]+)\/invoke$/.exec(url.pathname)))
				return await bedrockEmbed(req, res, body, raw, decodeURIComponent(m[1]));
			if (req.method === 'POST' && (m = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(url.pathname)))
				return await azure(req, res, body, decodeURIComponent(m[1]), url);
			if (req.method === 'POST' && (m = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):(\w+)$/.exec(url.pathname)))
				return await gemini(req, res, body, decodeURIComponent(m[1]), m[2], url, true);
			if (req.method === 'POST' && (m = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(url.pathname))) {
				if ((m[2] === 'streamRawPredict') !== (body.stream === true))
					return json(res, 400, { error: { code: 400, message: 'streamRawPredict takes "stream": true, rawPredict not', status: 'INVALID_ARGUMENT' } });
				return await anthropic(req, res, body, decodeURIComponent(m[1]));
			}
			if (req.method === 'POST' && url.pathname === '/api/chat') return await ollama(req, res, body, 'chat');
			if (req.method === 'POST' && url.pathname === '/api/embed') return await ollama(req, res, body, 'embed');
			json(res, 404, { error: { message: `no route ${req.method} ${url.pathname}` } });
		} catch (e) {
			if (!res.headersSent) json(res, 500, { error: { message: String(e) } });
			else res.destroy();
		}
	});
});

server.listen(opts.port, opts.host, () => {
	process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
