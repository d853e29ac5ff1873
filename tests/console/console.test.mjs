// The web console (haproxy/console/) in a real browser: Debian's chromium driven by
// puppeteer-core, against a running gateway (tests/console/run.sh starts scripts/demo).
// The steps a user takes: sign in with a key, issue a key, use it in the playground, see
// the usage appear, revoke it and see it refused; plus what the console promises: a strict
// Content-Security-Policy, nothing loaded from elsewhere, no credential in a URL, a cookie
// or localStorage, every control labelled and reachable from the keyboard.
// The admin API (/jairouter/admin/v1/) must answer: sign-in fails otherwise, and the steps
// that need it are then skipped with the gateway's answer as the reason.
//
//   JAIROUTER_URL, JAIROUTER_ADMIN_KEY, JAIROUTER_MODEL   the demo's env file
//   JR_CHROMIUM        the browser (default /usr/bin/chromium)
//   JR_CONSOLE_LOGS    the stack's directory, whose *.log files must hold no key
//   JR_CONSOLE_SHOTS   directory for the screenshots (docs/img when refreshing the docs)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const BASE = process.env.JAIROUTER_URL.replace(/\/+$/, '');
const ORIGIN = new URL(BASE).origin;
const CONSOLE = `${BASE}/jairouter/console/`;
const ADMIN_KEY = process.env.JAIROUTER_ADMIN_KEY;
const MODEL = process.env.JAIROUTER_MODEL || 'demo-model';
const SHOTS = process.env.JR_CONSOLE_SHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'jr-console-shots.'));

let browser, page, profile;
const requests = [];
const problems = [];
let adminMissing = null; // the gateway's answer when the admin API is absent
let issued = null; // { key, prefix }

async function shot(name) {
	fs.mkdirSync(SHOTS, { recursive: true });
	await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`), fullPage: true });
}

async function view(name) {
	await page.click(`.tabs button[data-view="${name}"]`);
	await page.waitForSelector(`#view-${name}:not([hidden])[aria-busy="false"]`);
}

const text = (sel) => page.$eval(sel, (e) => e.textContent);

// Polls fn (returning a truthy value when done) at most `tries` times, 500 ms apart.
async function until(fn, tries = 40) {
	for (let i = 0; i < tries; i++) {
		const v = await fn();
		if (v) return v;
		await new Promise((r) => setTimeout(r, 500));
	}
	return null;
}

function needsAdmin(t) {
	if (adminMissing) t.skip(`admin API absent: ${adminMissing}`);
	return !!adminMissing;
}

before(async () => {
	profile = fs.mkdtempSync(path.join(os.tmpdir(), 'jr-chromium.'));
	browser = await puppeteer.launch({
		executablePath: process.env.JR_CHROMIUM || '/usr/bin/chromium',
		headless: true,
		userDataDir: profile,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-default-apps', '--disable-sync',
			// No name resolves: anything but the loopback gateway would fail, and be seen.
			'--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
	});
	page = await browser.newPage();
	await page.setViewport({ width: 1200, height: 800 });
	page.on('request', (r) => requests.push(r.url()));
	page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
	page.on('pageerror', (e) => problems.push(String(e)));
	page.on('dialog', (d) => d.accept());
});

after(async () => {
	if (browser) await browser.close();
	fs.rmSync(profile, { recursive: true, force: true });
	console.log(`# screenshots in ${SHOTS}`);
});

test('console: served with a strict Content-Security-Policy', async () => {
	const res = await page.goto(CONSOLE, { waitUntil: 'networkidle0' });
	assert.equal(res.status(), 200);
	const csp = res.headers()['content-security-policy'];
	assert.match(csp, /default-src 'none'/);
	assert.match(csp, /script-src 'self'(;|$)/);
	assert.match(csp, /frame-ancestors 'none'/);
	assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
	assert.equal(res.headers()['x-content-type-options'], 'nosniff');
	// The sign-in field has the focus; the page is ready for the keyboard.
	assert.equal(await page.evaluate(() => document.activeElement.id), 'signin-key');
	await shot('signin');
});

test('console: a wrong key is refused and nothing is stored', async () => {
	await page.type('#signin-key', `jr-${'0'.repeat(64)}`);
	await page.keyboard.press('Enter');
	await page.waitForSelector('#status.error');
	assert.match(await text('#status'), /Sign-in refused/);
	assert.equal(await page.$eval('#app', (e) => e.hidden), true);
	assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test('console: sign in with the administrator key (keyboard only)', async () => {
	await page.focus('#signin-key');
	await page.keyboard.type(ADMIN_KEY);
	await page.keyboard.press('Enter');
	await page.waitForSelector('#app:not([hidden])');
	assert.equal(await page.$eval('#signin-key', (e) => e.value), '', 'the field is emptied');
	const missing = await page.$eval('#admin-missing', (e) => (e.hidden ? null : e.textContent));
	adminMissing = missing;
	assert.equal(missing, null, 'the admin API answers');
	// The overview is filled after the app is shown (the tenants and prices load first).
	await page.waitForFunction(() => /actor/.test(document.querySelector('#me').textContent), { timeout: 10000 });
	assert.match(await text('#me'), /actor/);
	await shot('overview');
});

test('console: every control has a label and the tabs work from the keyboard', async () => {
	const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
		.filter((e) => {
			if (e.tagName === 'BUTTON') return !(e.textContent.trim() || e.getAttribute('aria-label'));
			return !(e.labels && e.labels.length) && !e.getAttribute('aria-label');
		}).map((e) => e.id || e.outerHTML.slice(0, 60)));
	assert.deepEqual(unlabelled, []);
	await page.focus('.tabs button[data-view="playground"]');
	await page.keyboard.press('Enter');
	await page.waitForSelector('#view-playground:not([hidden])');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'playground-h');
	await view('overview');
});

test('console: issue a key (shown once)', async (t) => {
	if (needsAdmin(t)) return;
	await view('keys');
	await page.select('#tenant', 'demo');
	await page.type('#key-name', 'console-test');
	await page.click('#key-form button[type="submit"]');
	await page.waitForSelector('#key-secret:not([hidden])');
	const key = await page.$eval('#key-secret-value', (e) => e.value);
	assert.match(key, /^jr-[0-9a-f]{64}$/);
	issued = { key, prefix: key.slice(0, 11) };
	await until(async () => (await text('#keys-table')).includes(issued.prefix));
	assert.ok((await text('#keys-table')).includes('console-test'));
	await shot('keys');
	// Out of sight once done: the secret is not kept in the page.
	await page.click('#key-use');
	await page.waitForSelector('#view-playground:not([hidden])');
	assert.equal(await page.$eval('#key-secret-value', (e) => e.value), '');
});

async function play(prompt) {
	await page.waitForFunction((m) => [...document.querySelectorAll('#pg-model option')].some((o) => o.value === m), {}, MODEL);
	await page.select('#pg-model', MODEL);
	await page.$eval('#pg-prompt', (e) => { e.value = ''; });
	await page.type('#pg-prompt', prompt);
	await page.click('#pg-send');
	await page.waitForFunction(() => !document.querySelector('#pg-send').disabled
		&& document.querySelector('#pg-stats dd[data-k="status"]'));
	return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#pg-stats dd')]
		.map((d) => [d.dataset.k, d.textContent])));
}

test('console: the playground streams a completion with tokens, cost, latency and trace id', async () => {
	await view('playground');
	if (issued) {
		assert.equal(await page.$eval('#pg-key', (e) => e.value), 'issued');
	}
	const s = await play('Say hello to the console');
	assert.equal(s.status, '200');
	assert.ok((await text('#pg-out')).length > 0, 'an answer arrived');
	assert.match(s['trace id'], /^[0-9a-f-]{36}$|^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
	assert.ok(Number(s['prompt tokens']) > 0 && Number(s['completion tokens']) > 0);
	assert.match(s.latency, /^\d+ ms$/);
	assert.match(s['time to first token'], /^\d+ ms$/);
	if (!adminMissing) assert.match(s.cost, /^\d+\.\d+ [A-Z]{3}$/);
	await shot('playground');
});

test('console: the usage of that call appears', async (t) => {
	if (needsAdmin(t)) return;
	await view('usage');
	await page.select('#usage-group', 'model');
	const row = await until(async () => {
		await page.click('#usage-form button[type="submit"]');
		await new Promise((r) => setTimeout(r, 300));
		return page.evaluate((m) => [...document.querySelectorAll('#usage-table tbody tr')]
			.map((tr) => [...tr.children].map((td) => td.textContent)).find((c) => c[0] === m), MODEL);
	});
	assert.ok(row, 'a usage row for the model');
	assert.ok(Number(row[1]) >= 1, 'requests counted');
	assert.ok(await page.$('#usage-chart svg rect.bar'), 'the chart is drawn');
	await shot('usage');
});

test('console: revoke the key and see the playground refused', async (t) => {
	if (needsAdmin(t)) return;
	await view('keys');
	await page.click(`button[aria-label^="Revoke key ${issued.prefix}"]`);
	await page.waitForFunction((p) => document.querySelector('#status').textContent.includes(`Key ${p} revoked`), {}, issued.prefix);
	await view('playground');
	await page.select('#pg-key', 'issued');
	// Revocation reaches every agent through PostgreSQL notifications: try until refused.
	const s = await until(async () => {
		const r = await play('Am I still allowed?');
		return r.status === '401' ? r : null;
	}, 20);
	assert.ok(s, 'the revoked key is refused with 401');
	assert.match(await text('#pg-out'), /revoked.*\(invalid_api_key\)$/);
	await shot('revoked');
});

test('console: the audit log shows the key changes', async (t) => {
	if (needsAdmin(t)) return;
	await view('audit');
	const audit = await until(async () => {
		const s = await text('#audit-table');
		return s.includes(issued.prefix) || /key/i.test(s) ? s : null;
	});
	assert.ok(audit, 'audit rows about the key');
	await shot('audit');
});

// In a browser context of its own (no session of the tests above): the console's button,
// the provider's login and consent pages, back to the console with the code in the URL's
// fragment, exchanged (PKCE) for an access token that signs in to the admin API.
let oidcToken = null;
test('console: sign in through OpenID Connect (authorisation code with PKCE)', async () => {
	const issuer = process.env.JR_CONSOLE_OIDC;
	assert.ok(issuer, 'JR_CONSOLE_OIDC names the provider');
	const ctx = await browser.createBrowserContext();
	try {
		const p = await ctx.newPage();
		const seen = [];
		p.on('request', (r) => seen.push(r.url()));
		await p.goto(CONSOLE, { waitUntil: 'networkidle0' });
		await p.waitForSelector('#oidc:not([hidden])');
		assert.equal(await p.$eval('#oidc-name', (e) => e.textContent), 'Test SSO');
		await Promise.all([p.waitForNavigation(), p.click('#oidc-signin')]);
		assert.ok(p.url().startsWith(`${issuer}/`), `at the provider: ${p.url()}`);
		const auth = new URL(seen.find((u) => u.includes('/auth?')));
		assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
		assert.equal(auth.searchParams.get('response_mode'), 'fragment');
		await p.type('input[name="login"]', 'alice');
		await p.type('input[name="password"]', 'any');
		await Promise.all([p.waitForNavigation(), p.click('button[type="submit"]')]);
		// The consent page, then back to the console.
		await Promise.all([p.waitForNavigation(), p.click('button[type="submit"]')]);
		await p.waitForSelector('#app:not([hidden])', { timeout: 20000 });
		assert.equal(p.url(), CONSOLE, 'the code is gone from the address bar');
		assert.match(await p.$eval('#who', (e) => e.textContent), /alice/);
		assert.equal(await p.$eval('#admin-missing', (e) => e.hidden), true, 'the admin API accepts the token');
		oidcToken = await p.evaluate(() => sessionStorage.getItem('jairouter.console.token'));
		assert.match(oidcToken, /^ey[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
		assert.equal(await p.evaluate(() => sessionStorage.getItem('jairouter.console.oidc')), null);
		// No request to the gateway carried the code or the token in its URL.
		for (const u of seen.filter((x) => x.startsWith(`${ORIGIN}/`))) {
			assert.ok(!/[?&]code=/.test(u) && !u.includes(oidcToken), u);
		}
		await p.screenshot({ path: path.join(SHOTS, 'console-oidc.png'), fullPage: true });
	} finally {
		await ctx.close();
	}
});

test('console: nothing loaded from elsewhere, no error, no credential in a URL or cookie', async () => {
	assert.ok(requests.length > 0);
	// data: URLs are the browser's own (the date field's calendar icon), not network loads.
	const foreign = requests.filter((u) => !u.startsWith(`${ORIGIN}/`) && !u.startsWith('data:'));
	assert.deepEqual(foreign, []);
	for (const u of requests) {
		assert.ok(!u.includes(ADMIN_KEY), 'the admin key in a URL');
		if (issued) assert.ok(!u.includes(issued.key), 'the issued key in a URL');
	}
	// Refusals the console shows on purpose appear as failed loads: anything else is a fault.
	const unexpected = problems.filter((p) => !/status of (401|403|404)/.test(p));
	assert.deepEqual(unexpected, []);
	assert.equal(await page.evaluate(() => document.cookie), '');
	assert.equal(await page.evaluate(() => localStorage.length), 0);
	assert.equal(await page.evaluate(() => sessionStorage.getItem('jairouter.console.token')), ADMIN_KEY);
});

test('console: no credential in any log of the gateway', async () => {
	const dir = process.env.JR_CONSOLE_LOGS;
	assert.ok(dir, 'JR_CONSOLE_LOGS names the stack directory');
	const logs = fs.readdirSync(dir).filter((f) => f.endsWith('.log'));
	assert.ok(logs.includes('haproxy.log') && logs.includes('agent.log'));
	const secrets = [ADMIN_KEY, process.env.JAIROUTER_API_KEY, issued && issued.key, oidcToken].filter(Boolean);
	for (const f of logs) {
		const body = fs.readFileSync(path.join(dir, f), 'utf8');
		for (const k of secrets) assert.ok(!body.includes(k), `${k.slice(0, 11)}... appears in ${f}`);
	}
});

test('console: sign out forgets the credential', async () => {
	await page.click('#signout');
	await page.waitForSelector('#signin:not([hidden])');
	assert.equal(await page.evaluate(() => sessionStorage.length), 0);
	assert.equal(await page.$eval('#app', (e) => e.hidden), true);
});
