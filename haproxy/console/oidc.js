// Sign-in through an OpenID provider: the authorisation code flow with PKCE (RFC 7636, S256)
// for a public client. The provider answers in the URL's fragment (response_mode=fragment),
// which browsers never send to a server, so the code appears in no access log; the console
// removes it from the address bar at once. The verifier and state wait in sessionStorage
// for the round trip only. The access token (a JWT the gateway's identity layer accepts,
// docs/identity.md) then serves as the Bearer credential.
//
// config.json (served by HAProxy from the environment, docs/console.md):
//   {"oidc": {"issuer": "https://idp.example/realms/x", "client_id": "jairouter-console",
//             "scope": "openid", "name": "Example SSO"}}   or {"oidc": null}
const FLOW = 'jairouter.console.oidc';

function b64url(bytes) {
	return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n) {
	return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

function redirectUri() {
	return `${window.location.origin}${window.location.pathname}`;
}

export async function oidcConfigured() {
	const res = await fetch('config.json', { cache: 'no-store', credentials: 'omit' });
	if (!res.ok) return null;
	const cfg = await res.json();
	return cfg.oidc && cfg.oidc.issuer && cfg.oidc.client_id ? cfg.oidc : null;
}

async function discover(cfg) {
	const res = await fetch(`${cfg.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, { credentials: 'omit' });
	if (!res.ok) throw new Error(`the provider's discovery document answered HTTP ${res.status}`);
	return res.json();
}

export async function oidcStart(cfg) {
	const meta = await discover(cfg);
	const verifier = random(48);
	const state = random(24);
	const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
	sessionStorage.setItem(FLOW, JSON.stringify({ verifier, state }));
	const q = new URLSearchParams({ response_type: 'code', response_mode: 'fragment', client_id: cfg.client_id,
		redirect_uri: redirectUri(), scope: cfg.scope || 'openid', state, code_challenge: challenge,
		code_challenge_method: 'S256' });
	window.location.assign(`${meta.authorization_endpoint}?${q}`);
}

// On the way back: the code from the fragment exchanged for the access token, or null when
// this page load is not a return from the provider.
export async function oidcCallback(cfg) {
	const frag = new URLSearchParams(window.location.hash.slice(1));
	if (!frag.has('code') && !frag.has('error')) return null;
	window.history.replaceState(null, '', window.location.pathname);
	const flow = JSON.parse(sessionStorage.getItem(FLOW) || 'null');
	sessionStorage.removeItem(FLOW);
	if (frag.has('error')) throw new Error(`the provider refused: ${frag.get('error_description') || frag.get('error')}`);
	if (!flow || frag.get('state') !== flow.state) throw new Error('the answer does not belong to a sign-in started here');
	const meta = await discover(cfg);
	const res = await fetch(meta.token_endpoint, { method: 'POST', credentials: 'omit',
		headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
		body: new URLSearchParams({ grant_type: 'authorization_code', code: frag.get('code'),
			redirect_uri: redirectUri(), client_id: cfg.client_id, code_verifier: flow.verifier }) });
	const tok = await res.json().catch(() => ({}));
	if (!res.ok || !tok.access_token) {
		throw new Error(`the token endpoint answered HTTP ${res.status}${tok.error ? ` (${tok.error})` : ''}`);
	}
	return tok.access_token;
}
