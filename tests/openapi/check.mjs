// Checks docs/admin-api.openapi.yaml: that it is a valid OpenAPI 3.1 document, that it
// documents exactly the operations of the agent's route table (spoa/src/api/route.c), and,
// when a running gateway is given, that every documented operation answers as documented
// (status codes, response bodies against their schemas, ETag where documented).
//
//   node tests/openapi/check.mjs                    the document and the route table
//   JR_URL=... OA_PLATFORM_KEY=... OA_PLAIN_KEY=... OA_MODEL=... node tests/openapi/check.mjs
//
// Prints one line per check ("ok ..." / "not ok ..."), then "N passed, N failed"; the exit
// status is 1 when a check failed.
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const PREFIX = "/jairouter/admin/v1";
let passed = 0;
let failed = 0;

function check(ok, name, detail) {
	if (ok) {
		passed++;
		console.log(`ok ${name}`);
	} else {
		failed++;
		console.log(`not ok ${name}${detail ? `\n    ${detail}` : ""}`);
	}
}

// The route table in C: [method, "/pattern"] pairs.
function cRoutes() {
	const src = readFileSync(join(root, "spoa/src/api/route.c"), "utf8");
	const out = [];
	for (const m of src.matchAll(/\{ "([A-Z]+)", "([^"]+)", "([^"]+)" \}/g))
		out.push({ method: m[1], path: `/${m[2]}`, op: m[3] });
	return out;
}

function documented(api) {
	const out = [];
	for (const [path, item] of Object.entries(api.paths))
		for (const method of ["get", "post", "put", "patch", "delete"])
			if (item[method]) out.push({ method: method.toUpperCase(), path, op: item[method].operationId, spec: item[method] });
	return out;
}

function checkRouteTable(ops) {
	const routes = cRoutes();
	const key = (r) => `${r.method} ${r.path} ${r.op}`;
	const docKeys = new Set(ops.map(key));
	const cKeys = new Set(routes.map(key));
	const missing = routes.filter((r) => !docKeys.has(key(r))).map(key);
	const extra = ops.filter((o) => !cKeys.has(key(o))).map(key);
	check(routes.length > 0 && missing.length === 0, "every route of route.c is documented", missing.join(", "));
	check(extra.length === 0, "every documented operation is in route.c", extra.join(", "));
}

// ---- against a running gateway ------------------------------------------------------------

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
const exercised = new Set();

async function call(ops, op, method, path, { key, body, headers = {}, want }) {
	const spec = ops.find((o) => o.op === op);
	const name = `${op}: ${method} ${path} -> ${want}`;
	if (!spec || spec.method !== method) {
		check(false, name, `no documented ${method} operation ${op}`);
		return {};
	}
	const re = new RegExp(`^${spec.path.replace(/\{[^}]+\}/g, "[^/]+")}$`);
	const h = { ...headers };
	if (key) h.authorization = `Bearer ${key}`;
	if (body !== undefined) h["content-type"] = "application/json";
	const res = await fetch(`${process.env.JR_URL}${PREFIX}${path}`, {
		method,
		headers: h,
		body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
	});
	const text = await res.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	const doc = spec.spec.responses[String(res.status)];
	const schema = doc?.content?.["application/json"]?.schema;
	const problems = [];
	if (!re.test(path.split("?")[0])) problems.push(`path does not match ${spec.path}`);
	if (res.status !== want) problems.push(`status ${res.status}, expected ${want}`);
	if (!doc) problems.push(`status ${res.status} is not documented`);
	if (json === undefined) problems.push("the body is not JSON");
	if (schema && json !== undefined && !ajv.validate(schema, json))
		problems.push(`body: ${ajv.errorsText(ajv.errors)}`);
	if (doc?.headers?.ETag && !res.headers.get("etag")) problems.push("no ETag");
	if (problems.length) problems.push(text.slice(0, 400));
	check(problems.length === 0, name, problems.join("; "));
	exercised.add(op);
	return { status: res.status, json, etag: res.headers.get("etag") };
}

async function live(ops) {
	const P = process.env.OA_PLATFORM_KEY;
	const N = process.env.OA_PLAIN_KEY;
	const model = process.env.OA_MODEL;
	const t = `oa-${process.pid}`;
	const c = (op, method, path, opts) => call(ops, op, method, path, opts);

	await c("me", "GET", "/me", { key: P, want: 200 });
	await c("me", "GET", "/me", { want: 401 });
	await c("tenants.list", "GET", "/tenants?limit=1", { key: P, want: 200 });
	await c("tenants.list", "GET", "/tenants?limit=0", { key: P, want: 400 });
	await c("tenants.list", "GET", "/tenants", { key: N, want: 403 });
	await c("tenants.create", "POST", "/tenants", { key: P, body: { name: t }, want: 201 });
	await c("tenants.create", "POST", "/tenants", { key: P, body: { name: t }, want: 409 });
	const tg = await c("tenants.get", "GET", `/tenants/${t}`, { key: P, want: 200 });
	await c("tenants.get", "GET", `/tenants/${t}-none`, { key: P, want: 404 });
	await c("tenants.patch", "PATCH", `/tenants/${t}`, { key: P, body: { status: "active" }, want: 428 });
	await c("tenants.patch", "PATCH", `/tenants/${t}`, { key: P, body: { status: "active" }, headers: { "if-match": '"x"' }, want: 412 });
	await c("tenants.patch", "PATCH", `/tenants/${t}`, { key: P, body: { status: "active" }, headers: { "if-match": tg.etag ?? "" }, want: 200 });
	await c("keys.create", "POST", `/tenants/${t}/keys`, { key: P, body: { name: "a" }, headers: { "idempotency-key": t }, want: 201 });
	await c("keys.create", "POST", `/tenants/${t}/keys`, { key: P, body: { name: "a" }, headers: { "idempotency-key": t }, want: 200 });
	await c("keys.create", "POST", `/tenants/${t}/keys`, { key: P, body: { name: "b" }, headers: { "idempotency-key": t }, want: 409 });
	await c("keys.create", "POST", `/tenants/${t}/keys`, { key: P, body: JSON.stringify({ name: "x".repeat(70000) }), want: 413 });
	await c("keys.create", "POST", `/tenants/${t}/keys`, { key: P, body: "{", want: 400 });
	const k = await c("keys.create", "POST", `/tenants/${t}/keys`, { key: P, body: { name: "b" }, want: 201 });
	await c("keys.list", "GET", `/tenants/${t}/keys?limit=1`, { key: P, want: 200 });
	await c("keys.list", "GET", `/tenants/${t}-none/keys`, { key: P, want: 404 });
	const role = await c("roles.create", "POST", "/roles", { key: P, body: { name: `${t}-r`, tenant: t, allow: ["service:chat"] }, want: 201 });
	await c("roles.create", "POST", "/roles", { key: P, body: { name: `${t}-r`, tenant: t }, want: 409 });
	await c("roles.list", "GET", `/roles?tenant=${t}`, { key: P, want: 200 });
	await c("keys.roles.add", "POST", `/keys/${k.json?.id}/roles`, { key: P, body: { role: `${t}-r` }, want: 200 });
	await c("keys.roles.remove", "DELETE", `/keys/${k.json?.id}/roles/${t}-r`, { key: P, want: 200 });
	await c("keys.roles.add", "POST", `/keys/${k.json?.id}/roles`, { key: P, body: { role: "no-such-role" }, want: 404 });
	await c("roles.delete", "DELETE", `/roles/${role.json?.id}`, { key: P, want: 200 });
	await c("keys.revoke", "DELETE", `/keys/${k.json?.id}`, { key: P, want: 200 });
	await c("keys.revoke", "DELETE", "/keys/abc", { key: P, want: 400 });
	await c("keys.revoke", "DELETE", "/keys/999999999", { key: P, want: 404 });
	await c("models.list", "GET", "/models", { key: P, want: 200 });
	const r = await c("routing.get", "GET", `/models/${model}/routing`, { key: P, want: 200 });
	await c("routing.get", "GET", `/models/${model}-none/routing`, { key: P, want: 404 });
	await c("routing.put", "PUT", `/models/${model}/routing`, { key: P, body: {}, want: 428 });
	await c("routing.put", "PUT", `/models/${model}/routing`, { key: P, body: { strategy: "random" }, headers: { "if-match": r.etag ?? "" }, want: 200 });
	await c("routing.put", "PUT", `/models/${model}/routing`, { key: P, body: {}, headers: { "if-match": r.etag ?? "" }, want: 412 });
	await c("routing.put", "PUT", `/models/${model}/routing`, { key: P, body: {}, headers: { "if-match": "*" }, want: 200 });
	const l = await c("limits.create", "POST", "/limits", { key: P, body: { scope: "tenant", dimension: "requests", algorithm: "token_bucket", amount: 10, window_ms: 1000, tenant: t }, want: 201 });
	await c("limits.create", "POST", "/limits", { key: P, body: { scope: "tenant" }, want: 400 });
	await c("limits.list", "GET", `/limits?tenant=${t}`, { key: P, want: 200 });
	await c("limits.delete", "DELETE", `/limits/${l.json?.id}`, { key: P, want: 200 });
	await c("limits.delete", "DELETE", `/limits/${l.json?.id}`, { key: P, want: 404 });
	await c("issuers.create", "POST", "/issuers", { key: P, body: { name: t, issuer: `https://${t}.example`, algorithms: ["RS256"], tenant: t }, want: 201 });
	await c("issuers.create", "POST", "/issuers", { key: P, body: { name: t, issuer: `https://${t}.example`, algorithms: ["RS256"], tenant: t }, want: 409 });
	const i = await c("issuers.get", "GET", `/issuers/${t}`, { key: P, want: 200 });
	await c("issuers.list", "GET", "/issuers", { key: P, want: 200 });
	await c("issuers.patch", "PATCH", `/issuers/${t}`, { key: P, body: { audience: "gw" }, headers: { "if-match": i.etag ?? "" }, want: 200 });
	await c("issuers.patch", "PATCH", `/issuers/${t}`, { key: P, body: { audience: "gw" }, want: 428 });
	await c("issuers.keys.add", "POST", `/issuers/${t}/keys`, { key: P, body: { kid: "k1", jwk: { kty: "oct", k: "c2hhcmVkLXNlY3JldC1vZi1hdC1sZWFzdC0zMi1ieXRlcy1sb25n" } }, want: 201 });
	await c("issuers.keys.delete", "DELETE", `/issuers/${t}/keys/k1`, { key: P, want: 200 });
	await c("issuers.keys.delete", "DELETE", `/issuers/${t}/keys/k1`, { key: P, want: 404 });
	await c("issuers.delete", "DELETE", `/issuers/${t}`, { key: P, want: 200 });
	await c("issuers.get", "GET", `/issuers/${t}`, { key: P, want: 404 });
	const be = `be_${t.replace(/-/g, "_")}`;
	await c("endpoints.put", "PUT", `/endpoints/${be}`, { key: P, body: { base_url: "https://api.example.com", region: "eu-west-1" }, want: 200 });
	const e = await c("endpoints.get", "GET", `/endpoints/${be}`, { key: P, want: 200 });
	await c("endpoints.put", "PUT", `/endpoints/${be}`, { key: P, body: { base_url: null }, want: 428 });
	await c("endpoints.put", "PUT", `/endpoints/${be}`, { key: P, body: { base_url: null }, headers: { "if-match": e.etag ?? "" }, want: 200 });
	await c("endpoints.put", "PUT", `/endpoints/${be}`, { key: P, body: { base_url: "ftp://x" }, headers: { "if-match": "*" }, want: 400 });
	await c("endpoints.list", "GET", "/endpoints", { key: P, want: 200 });
	await c("endpoints.list", "GET", "/endpoints", { key: N, want: 403 });
	await c("endpoints.delete", "DELETE", `/endpoints/${be}`, { key: P, want: 200 });
	await c("endpoints.get", "GET", `/endpoints/${be}`, { key: P, want: 404 });
	const mk = await c("masking.get", "GET", `/tenants/${t}/masking`, { key: P, want: 200 });
	await c("masking.put", "PUT", `/tenants/${t}/masking`, { key: P, body: { enabled: true }, want: 428 });
	await c("masking.put", "PUT", `/tenants/${t}/masking`, { key: P, body: { enabled: true, policy: null }, headers: { "if-match": mk.etag ?? "" }, want: 200 });
	await c("masking.put", "PUT", `/tenants/${t}/masking`, { key: P, body: { enabled: false }, headers: { "if-match": mk.etag ?? "" }, want: 412 });
	await c("masking.put", "PUT", `/tenants/${t}/masking`, { key: P, body: { enabled: "yes" }, headers: { "if-match": "*" }, want: 400 });
	await c("credentials.put", "PUT", `/credentials/backend/${be}`, { key: P, body: { header: "x-api-key" }, want: 400 });
	await c("credentials.put", "PUT", `/credentials/backend/${be}`, { key: P, body: { secret: "sk-openapi-check", header: "x-api-key", scheme: "raw" }, want: 200 });
	const cr = await c("credentials.get", "GET", `/credentials/backend/${be}`, { key: P, want: 200 });
	await c("credentials.put", "PUT", `/credentials/backend/${be}`, { key: P, body: { secret: "sk-2" }, want: 428 });
	await c("credentials.put", "PUT", `/credentials/backend/${be}`, { key: P, body: { secret: "sk-2" }, headers: { "if-match": cr.etag ?? "" }, want: 200 });
	await c("credentials.put", "PUT", `/credentials/backend/${be}`, { key: P, body: { secret: "sk-3" }, headers: { "if-match": cr.etag ?? "" }, want: 412 });
	await c("credentials.list", "GET", "/credentials", { key: P, want: 200 });
	await c("credentials.delete", "DELETE", `/credentials/backend/${be}`, { key: P, want: 200 });
	await c("credentials.delete", "DELETE", `/credentials/backend/${be}`, { key: P, want: 404 });
	await c("credentials.get", "GET", `/credentials/backend/${be}`, { key: P, want: 404 });
	await c("usage", "GET", "/usage?group_by=model", { key: P, want: 200 });
	await c("usage", "GET", "/usage?group_by=week", { key: P, want: 400 });
	await c("usage", "GET", "/usage", { key: N, want: 403 });
	await c("audit", "GET", "/audit?limit=5", { key: P, want: 200 });
	await c("audit", "GET", "/audit?cursor=%21", { key: P, want: 400 });

	const unexercised = ops.map((o) => o.op).filter((op) => !exercised.has(op));
	check(unexercised.length === 0, "every documented operation was exercised", unexercised.join(", "));
}

const api = await SwaggerParser.validate(join(root, "docs/admin-api.openapi.yaml")).catch((e) => {
	check(false, "docs/admin-api.openapi.yaml is a valid OpenAPI document", e.message);
	return null;
});
if (api) {
	check(api.openapi.startsWith("3.1."), "docs/admin-api.openapi.yaml is a valid OpenAPI 3.1 document", api.openapi);
	const ops = documented(api);
	checkRouteTable(ops);
	if (process.env.JR_URL) await live(ops);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
