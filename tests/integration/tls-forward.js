// A TLS front for a plain TCP server, for tests/integration/realtime.bats: the adapter's
// TLS connection to a model server (certificate verified, SNI, host name) is checked
// against the mock behind it.
//
//   node tls-forward.js --cert PEM --key PEM --to HOST:PORT
//
// Listens on a kernel-chosen loopback port (printed as "LISTENING <port>") and pipes each
// connection, once its handshake is done, to HOST:PORT.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const tls = require('node:tls');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const [host, port] = args.to.split(':');

const server = tls.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) }, (client) => {
	const up = net.connect(Number(port), host);
	client.pipe(up);
	up.pipe(client);
	const end = () => { client.destroy(); up.destroy(); };
	client.on('error', end);
	up.on('error', end);
	client.on('close', end);
	up.on('close', end);
});
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => process.stdout.write(`LISTENING ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
