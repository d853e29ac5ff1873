// A webhook receiver for the Alertmanager test: every POST body (Alertmanager's JSON
// notification) is appended as one line to the file given as --out, with the path it
// came to. Prints "LISTENING <port>" once listening on 127.0.0.1 (--port 0: any).
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
	const i = args.indexOf(`--${name}`);
	return i >= 0 ? args[i + 1] : dflt;
};
const out = opt('out');
if (!out) {
	console.error('usage: webhook.mjs --out FILE [--port N]');
	process.exit(2);
}
const server = createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		if (req.method === 'POST') {
			let body;
			try {
				body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
			} catch {
				res.writeHead(400).end();
				return;
			}
			appendFileSync(out, JSON.stringify({ path: req.url, body }) + '\n');
		}
		res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
	});
});
server.listen(Number(opt('port', '0')), '127.0.0.1', () => {
	console.log(`LISTENING ${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
