// JAiRouter console: a single page over the admin API (/jairouter/admin/v1/, docs/admin-api.md)
// and the model API (/v1/). Plain ES modules served by HAProxy from this directory; nothing is
// loaded from anywhere else (Content-Security-Policy: default-src 'none', script-src 'self').
// The credential lives in memory and in this tab's sessionStorage only: never in a URL, a
// cookie or localStorage. Everything shown is written with textContent, never as HTML.
import { barChart } from './chart.js';
import { oidcConfigured, oidcStart, oidcCallback } from './oidc.js';
import { initPlayground, playgroundKeys, playgroundShown } from './playground.js';

const API = '/jairouter/admin/v1';
const STORE = 'jairouter.console.token';

// The session: the credential, who it is (GET /me), whether the admin API answers.
export const session = { token: null, me: null, admin: false, issued: null, prices: new Map() };

const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (k === 'text') e.textContent = v;
		else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
		else e.setAttribute(k, v);
	}
	for (const c of children) e.append(c);
	return e;
}

export function say(message, error = false) {
	const s = $('status');
	s.textContent = message;
	s.classList.toggle('error', error);
}

export class ApiError extends Error {
	constructor(status, body) {
		const err = body && body.error;
		super(err && err.message ? err.message : `HTTP ${status}`);
		this.status = status;
		this.code = err && err.code;
	}
}

// One JSON call with the session's credential (or `token`); throws ApiError on a non-2xx.
export async function call(path, { method = 'GET', body, headers = {}, token } = {}) {
	const h = { Authorization: `Bearer ${token || session.token}`, Accept: 'application/json', ...headers };
	if (body !== undefined) h['Content-Type'] = 'application/json';
	const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
		cache: 'no-store', credentials: 'omit' });
	let data = null;
	if ((res.headers.get('content-type') || '').includes('json')) data = await res.json().catch(() => null);
	if (!res.ok) throw new ApiError(res.status, data);
	return data;
}
const admin = (path, opts) => call(API + path, opts);

// ---- tables ------------------------------------------------------------------------------

const NUMERIC = new Set(['requests', 'prompt_tokens', 'completion_tokens', 'cost', 'price_in', 'price_out',
	'limit', 'value', 'window_s', 'burst']);

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;

function cellText(v) {
	if (v === null || v === undefined) return '—';
	if (typeof v === 'object') return JSON.stringify(v);
	// Timestamps to the second, in UTC.
	if (typeof v === 'string' && TIMESTAMP.test(v) && !Number.isNaN(Date.parse(v))) {
		return `${new Date(v).toISOString().slice(0, 19).replace('T', ' ')}Z`;
	}
	return String(v);
}

// A table of rows; columns default to the union of the rows' keys. `actions(row)` returns
// cells' contents for a last column (buttons).
function table(container, rows, { caption, columns, actions, empty = 'Nothing to show.' } = {}) {
	container.replaceChildren();
	if (!rows.length) {
		container.append(el('p', { text: empty }));
		return;
	}
	const cols = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
	const head = el('tr', {}, ...cols.map((c) => el('th', { scope: 'col', class: NUMERIC.has(c) ? 'num' : '', text: c })));
	if (actions) head.append(el('th', { scope: 'col', text: 'actions' }));
	const body = rows.map((r) => {
		const tr = el('tr', {}, ...cols.map((c) => el('td', { class: NUMERIC.has(c) ? 'num' : '', text: cellText(r[c]) })));
		if (actions) tr.append(el('td', {}, ...actions(r)));
		return tr;
	});
	container.append(el('div', { class: 'scroll' }, el('table', {}, el('caption', { text: caption || '' }),
		el('thead', {}, head), el('tbody', {}, ...body))));
}

function failed(where, e) {
	say(`${where}: ${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`, true);
}

// ---- views -------------------------------------------------------------------------------

const loaders = {
	overview: showOverview, tenants: loadTenants, keys: loadKeys, models: loadModels,
	limits: loadLimits, usage: loadUsage, audit: () => loadAudit(false), playground: playgroundShown,
};

export function show(view) {
	for (const b of document.querySelectorAll('.tabs button')) {
		if (b.dataset.view === view) b.setAttribute('aria-current', 'page');
		else b.removeAttribute('aria-current');
	}
	for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== `view-${view}`;
	$(`${view}-h`).focus();
	say('');
	// aria-busy while the view's data loads (assistive technology waits for it).
	const section = $(`view-${view}`);
	section.setAttribute('aria-busy', 'true');
	Promise.resolve(loaders[view]()).catch((e) => failed(view, e))
		.finally(() => section.setAttribute('aria-busy', 'false'));
}

const tenant = () => $('tenant').value;

function showOverview() {
	const me = session.me || {};
	const dl = $('me');
	dl.replaceChildren();
	const rows = session.admin
		? [['actor', me.actor], ['tenant', me.tenant], ['roles', (me.roles || []).join(', ') || '—'],
			['permissions', (me.permissions || []).join(', ') || '—']]
		: [['credential', 'valid for the model API']];
	for (const [k, v] of rows) dl.append(el('dt', { text: k }), el('dd', { text: cellText(v) }));
}

async function loadTenants() {
	const r = await admin('/tenants?limit=500');
	table($('tenants-table'), r.data, { caption: `${r.data.length} tenant(s)` });
}

async function loadKeys() {
	const t = tenant();
	const r = await admin(`/tenants/${encodeURIComponent(t)}/keys?limit=500`);
	table($('keys-table'), r.data, {
		caption: `Keys of tenant ${t} (prefixes only: a key is never stored)`,
		columns: ['prefix', 'name', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'],
		// The key this session signed in with is not offered for revocation (no self lock-out).
		actions: (k) => (k.revoked_at ? [] : session.me && session.me.actor === `key:${k.prefix}`
			? [el('span', { text: 'signed in with it' })]
			: [el('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke key ${k.prefix} (${k.name})`,
				text: 'Revoke', onclick: () => revokeKey(k) })]),
	});
}

async function issueKey(ev) {
	ev.preventDefault();
	const name = $('key-name').value.trim();
	const exp = $('key-expires').value;
	const body = { name, expires_at: exp ? new Date(exp).toISOString() : null };
	try {
		const k = await admin(`/tenants/${encodeURIComponent(tenant())}/keys`, { method: 'POST', body,
			headers: { 'Idempotency-Key': crypto.randomUUID() } });
		session.issued = { key: k.key, prefix: k.prefix, name: k.name || name };
		$('key-secret-value').value = k.key;
		$('key-secret').hidden = false;
		$('key-secret-h').focus();
		$('key-form').reset();
		say(`Key ${k.prefix} issued for tenant ${tenant()}.`);
		playgroundKeys();
		await loadKeys();
	} catch (e) {
		failed('Issuing the key', e);
	}
}

function hideSecret() {
	$('key-secret-value').value = '';
	$('key-secret').hidden = true;
}

async function revokeKey(k) {
	if (!window.confirm(`Revoke key ${k.prefix} (${k.name})? Requests with it are refused at once.`)) return;
	try {
		const r = await admin(`/keys/${encodeURIComponent(k.id)}`, { method: 'DELETE' });
		say(`Key ${k.prefix} revoked at ${r.revoked_at}.`);
		if (session.issued && session.issued.prefix === k.prefix) {
			// The playground keeps it: calling with it shows the refusal.
			session.issued.revoked = true;
			playgroundKeys();
		}
		await loadKeys();
	} catch (e) {
		failed('Revoking the key', e);
	}
}

export async function loadPrices() {
	if (!session.admin) return;
	const r = await admin('/models?limit=500');
	session.prices = new Map(r.data.map((m) => [m.id, m]));
	return r.data;
}

async function loadModels() {
	if (!session.admin) {
		const r = await call('/v1/models');
		table($('models-table'), r.data, { caption: 'Models this credential may use (GET /v1/models); prices need the admin API',
			columns: ['id', 'owned_by'] });
		return;
	}
	const data = await loadPrices();
	table($('models-table'), data, { caption: 'Prices per million tokens',
		columns: ['id', 'provider', 'price_in', 'price_out', 'currency'] });
}

async function loadLimits() {
	const r = await admin(`/limits?tenant=${encodeURIComponent(tenant())}`);
	table($('limits-table'), r.data, { caption: `Limits of tenant ${tenant()}`, empty: 'No limit is set for this tenant.' });
}

async function loadUsage(ev) {
	if (ev) ev.preventDefault();
	const group = $('usage-group').value;
	const from = $('usage-from').value, to = $('usage-to').value;
	const q = new URLSearchParams({ tenant: tenant(), from, to, group_by: group });
	const r = await admin(`/usage?${q}`);
	const rows = r.data;
	table($('usage-table'), rows, { caption: `Usage of tenant ${tenant()} from ${from} to ${to}, by ${group}`,
		columns: [group, 'requests', 'prompt_tokens', 'completion_tokens', 'cost', 'currency'],
		empty: 'No usage in this period.' });
	const requests = rows.reduce((a, x) => a + Number(x.requests || 0), 0);
	const cost = rows.reduce((a, x) => a + Number(x.cost || 0), 0);
	const currency = rows.length ? rows[0].currency || '' : '';
	barChart($('usage-chart'), rows.map((x) => ({ label: cellText(x[group]), a: Number(x.requests || 0),
		b: Number(x.cost || 0) })), { a: 'requests', b: `cost ${currency}`.trim(),
		title: `Requests and cost by ${group}` });
	$('usage-caption').textContent = `${requests} request(s), cost ${cost.toFixed(6)} ${currency}`.trim();
}

let auditCursor = null;
let auditRows = [];
async function loadAudit(more) {
	const q = new URLSearchParams({ tenant: tenant(), limit: '50' });
	if (more && auditCursor) q.set('cursor', auditCursor);
	const r = await admin(`/audit?${q}`);
	auditRows = more ? auditRows.concat(r.data) : r.data;
	auditCursor = r.next_cursor;
	table($('audit-table'), auditRows, { caption: `Changes in tenant ${tenant()}, newest first`,
		columns: ['at', 'actor', 'action', 'target'], empty: 'No change recorded.' });
	$('audit-more').hidden = !auditCursor;
}

// ---- sign in -----------------------------------------------------------------------------

// Checks the credential: the admin API's /me, else (no admin API here, or a credential without
// the admin permission) the model API's /v1/models. Throws ApiError when it is refused.
async function identify(token) {
	try {
		session.me = await call(`${API}/me`, { token });
		session.admin = true;
		return null;
	} catch (e) {
		if (e.status === 401) throw e;
		session.me = null;
		session.admin = false;
		await call('/v1/models', { token });
		return e.status === 403
			? 'This credential has no admin permission: the playground and the models it may use are available.'
			: `The admin API did not answer (${e.message}${e.status ? `, HTTP ${e.status}` : ''}): ` +
			  'the playground and the models this credential may use are available.';
	}
}

export async function signIn(token) {
	say('Signing in…');
	let note;
	try {
		note = await identify(token);
	} catch (e) {
		failed('Sign-in refused', e);
		return false;
	}
	session.token = token;
	sessionStorage.setItem(STORE, token);
	$('signin').hidden = true;
	$('app').hidden = false;
	$('signout').hidden = false;
	$('who').hidden = false;
	$('who').textContent = session.admin ? `${session.me.actor} · ${session.me.tenant || 'all tenants'}` : 'model API only';
	for (const e of document.querySelectorAll('[data-admin]')) e.hidden = !session.admin;
	$('admin-missing').hidden = !note;
	$('admin-missing').textContent = note || '';
	if (session.admin) await loadTenantChoice().catch((e) => failed('Tenants', e));
	await loadPrices().catch(() => {});
	playgroundKeys();
	show('overview');
	say(note ? 'Signed in (model API only).' : 'Signed in.');
	return true;
}

async function loadTenantChoice() {
	const sel = $('tenant');
	let names;
	try {
		names = (await admin('/tenants?limit=500')).data.map((t) => t.name);
	} catch (e) {
		// A tenant administrator may not list tenants: their own is the one.
		if (e.status !== 403 || !session.me.tenant) throw e;
		names = [session.me.tenant];
	}
	sel.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
	if (session.me.tenant && names.includes(session.me.tenant)) sel.value = session.me.tenant;
}

function signOut() {
	sessionStorage.removeItem(STORE);
	session.token = null;
	session.me = null;
	session.issued = null;
	hideSecret();
	window.location.replace(window.location.pathname);
}

async function main() {
	const today = new Date();
	const ago = new Date(today.getTime() - 29 * 86400000);
	$('usage-to').value = today.toISOString().slice(0, 10);
	$('usage-from').value = ago.toISOString().slice(0, 10);
	for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => show(b.dataset.view));
	$('tenant').addEventListener('change', () => {
		const cur = document.querySelector('.tabs button[aria-current="page"]');
		if (cur) show(cur.dataset.view);
	});
	$('key-form').addEventListener('submit', issueKey);
	$('key-hide').addEventListener('click', hideSecret);
	$('key-copy').addEventListener('click', () => navigator.clipboard.writeText($('key-secret-value').value)
		.then(() => say('Key copied.'), () => say('Copy refused by the browser: select the key and copy it.', true)));
	$('key-use').addEventListener('click', () => {
		playgroundKeys('issued');
		hideSecret();
		show('playground');
	});
	$('usage-form').addEventListener('submit', (ev) => loadUsage(ev).catch((e) => failed('Usage', e)));
	$('audit-more').addEventListener('click', () => loadAudit(true).catch((e) => failed('Audit log', e)));
	$('signout').addEventListener('click', signOut);
	$('signin-form').addEventListener('submit', (ev) => {
		ev.preventDefault();
		const k = $('signin-key').value.trim();
		$('signin-key').value = '';
		signIn(k);
	});
	initPlayground();

	const cfg = await oidcConfigured();
	if (cfg) {
		$('oidc').hidden = false;
		$('oidc-name').textContent = cfg.name || 'OpenID Connect';
		$('oidc-signin').addEventListener('click', () => oidcStart(cfg).catch((e) => failed('OpenID Connect', e)));
		const token = await oidcCallback(cfg).catch((e) => {
			failed('OpenID Connect', e);
			return null;
		});
		if (token && await signIn(token)) return;
	}
	const saved = sessionStorage.getItem(STORE);
	if (saved && !(await signIn(saved))) sessionStorage.removeItem(STORE);
	if (!session.token) $('signin-key').focus();
}

main();
