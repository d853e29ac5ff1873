#!/usr/bin/env node
// The operator's own servers behind ../shared/fixtures/operator-haproxy/haproxy.cfg,
// for the composition tests (tests/dropin/, scripts/compose-operator):
//
//   op-servers.js web    --port 0   the website: GET / (HTML, 8 KiB, compressible),
//                                   /healthz, /style.css; anything else 404
//   op-servers.js api    --port 0   the internal REST API: /internal/api/... answers
//                                   JSON naming the method, path and the
//                                   X-Team-Gateway header HAProxy adds
//   op-servers.js syslog --port 0 --out FILE
//                                   a UDP syslog receiver: one datagram per line in FILE
//
// Each prints "LISTENING <port>" once it listens on 127.0.0.1.
'use strict';
const http = require('http');
const dgram = require('dgram');
const fs = require('fs');

const role = process.argv[2];
let port = 0;
let out = null;
for (let i = 3; i < process.argv.length; i += 2) {
	const v = process.argv[i + 1];
	if (process.argv[i] === '--port' && /^\d+$/.test(v || '')) port = Number(v);
	else if (process.argv[i] === '--out' && v) out = v;
	else {
		process.stderr.write(`usage: op-servers.js web|api|syslog --port N [--out FILE]\n`);
		process.exit(2);
	}
}

const page = '<!doctype html><html><head><title>Example Corp</title></head><body>' +
	'<p>Welcome to Example Corp.</p>'.repeat(300) + '</body></html>\n';

function web(req, res) {
	const path = req.url.split('?')[0];
	if (path === '/healthz') {
		res.writeHead(200, { 'content-type': 'text/plain' });
		return res.end('ok\n');
	}
	if (path === '/' || path === '/index.html') {
		res.writeHead(200, { 'content-type': 'text/html' });
		return res.end(page);
	}
	if (path === '/style.css') {
		res.writeHead(200, { 'content-type': 'text/css' });
		return res.end('body { font-family: sans-serif; }\n'.repeat(100));
	}
	res.writeHead(404, { 'content-type': 'text/html' });
	res.end('<html><body>not found</body></html>\n');
}

function api(req, res) {
	let body = '';
	req.on('data', (c) => { body += c; });
	req.on('end', () => {
		if (!req.url.startsWith('/internal/api/')) {
			res.writeHead(404, { 'content-type': 'application/json' });
			return res.end('{"error":"not found"}\n');
		}
		res.writeHead(200, { 'content-type': 'application/json' });
		res.end(JSON.stringify({
			method: req.method,
			path: req.url,
			team_gateway: req.headers['x-team-gateway'] || null,
			bytes: body.length,
		}) + '\n');
	});
}

if (role === 'web' || role === 'api') {
	const srv = http.createServer(role === 'web' ? web : api);
	srv.keepAliveTimeout = 60000;
	srv.listen(port, '127.0.0.1', () => console.log(`LISTENING ${srv.address().port}`));
	process.on('SIGTERM', () => srv.close(() => process.exit(0)));
} else if (role === 'syslog' && out) {
	const sock = dgram.createSocket('udp4');
	const fd = fs.openSync(out, 'a');
	sock.on('message', (msg) => fs.writeSync(fd, msg.toString('utf8').replace(/\n+$/, '') + '\n'));
	sock.bind(port, '127.0.0.1', () => console.log(`LISTENING ${sock.address().port}`));
	process.on('SIGTERM', () => { sock.close(); fs.closeSync(fd); process.exit(0); });
} else {
	process.stderr.write('usage: op-servers.js web|api|syslog --port N [--out FILE]\n');
	process.exit(2);
}
