#!/usr/bin/env node
// Opens N TLS keep-alive connections to URL, makes one GET on each, then keeps them
// open and idle until SIGTERM (scripts/bench-bufsize: the memory an
// idle connection costs). Prints "HELD <n>" once all are established and answered.
'use strict';
const https = require('https');
const [url, nArg] = process.argv.slice(2);
const n = Number(nArg);
if (!url || !Number.isInteger(n) || n < 1) {
	process.stderr.write('usage: hold-conns.js URL N\n');
	process.exit(2);
}
const agents = [];
let done = 0;
for (let i = 0; i < n; i++) {
	const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
	agents.push(agent);
	https.get(url, { agent }, (res) => {
		res.resume();
		res.on('end', () => {
			if (++done === n) console.log(`HELD ${n}`);
		});
	}).on('error', (e) => {
		process.stderr.write(`connection ${i}: ${e.message}\n`);
		process.exit(1);
	});
}
const stop = () => { agents.forEach((a) => a.destroy()); process.exit(0); };
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
