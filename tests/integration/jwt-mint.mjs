// jwt-mint: keys and tokens for tests/integration/identity.bats (Node's own crypto; no
// packages). Signing happens here, verification in the agent.
//
//   node jwt-mint.mjs keygen DIR                    rsa/ec/ed keys (PEM private, JWK public)
//                                                   and a 32-byte HMAC secret (oct JWK)
//   node jwt-mint.mjs sign DIR ALG KID PAYLOAD      a compact JWS; ALG one of RS256 PS256
//                                                   ES256 EdDSA HS256 none; KID "-" = none
//   node jwt-mint.mjs hs-with-pubkey DIR KID PAYLOAD  HS256 keyed with the RSA public key PEM
//   node jwt-mint.mjs tamper TOKEN PAYLOAD          the token with its payload replaced
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const b64 = (buf) => Buffer.from(buf).toString("base64url");
const [cmd, ...args] = process.argv.slice(2);

function keygen(dir) {
	fs.mkdirSync(dir, { recursive: true });
	const pairs = {
		rsa: crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
		ec: crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }),
		ed: crypto.generateKeyPairSync("ed25519"),
	};
	for (const [name, { privateKey, publicKey }] of Object.entries(pairs)) {
		fs.writeFileSync(path.join(dir, `${name}.pem`), privateKey.export({ type: "pkcs8", format: "pem" }));
		fs.writeFileSync(path.join(dir, `${name}.pub.pem`), publicKey.export({ type: "spki", format: "pem" }));
		fs.writeFileSync(path.join(dir, `${name}.jwk`), JSON.stringify(publicKey.export({ format: "jwk" })));
	}
	const secret = crypto.randomBytes(32);
	fs.writeFileSync(path.join(dir, "hs.secret"), secret);
	fs.writeFileSync(path.join(dir, "hs.jwk"), JSON.stringify({ kty: "oct", k: b64(secret) }));
}

function signingInput(alg, kid, payload) {
	const header = { alg, typ: "JWT" };
	if (kid && kid !== "-") header.kid = kid;
	return `${b64(JSON.stringify(header))}.${b64(payload)}`;
}

function sign(dir, alg, kid, payload) {
	const input = signingInput(alg, kid, payload);
	const data = Buffer.from(input);
	const key = (name) => crypto.createPrivateKey(fs.readFileSync(path.join(dir, `${name}.pem`)));
	let sig;
	switch (alg) {
	case "RS256": sig = crypto.sign("sha256", data, key("rsa")); break;
	case "PS256":
		sig = crypto.sign("sha256", data, { key: key("rsa"), padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
			saltLength: 32 });
		break;
	case "ES256": sig = crypto.sign("sha256", data, { key: key("ec"), dsaEncoding: "ieee-p1363" }); break;
	case "EdDSA": sig = crypto.sign(null, data, key("ed")); break;
	case "HS256": sig = crypto.createHmac("sha256", fs.readFileSync(path.join(dir, "hs.secret"))).update(data).digest(); break;
	case "none": sig = Buffer.alloc(0); break;
	default: throw new Error(`unknown alg ${alg}`);
	}
	return `${input}.${b64(sig)}`;
}

switch (cmd) {
case "keygen": keygen(args[0]); break;
case "sign": process.stdout.write(sign(args[0], args[1], args[2], args[3])); break;
case "hs-with-pubkey": {
	const input = signingInput("HS256", args[1], args[2]);
	const pem = fs.readFileSync(path.join(args[0], "rsa.pub.pem"));
	process.stdout.write(`${input}.${b64(crypto.createHmac("sha256", pem).update(input).digest())}`);
	break;
}
case "tamper": {
	const [h, , s] = args[0].split(".");
	process.stdout.write(`${h}.${b64(args[1])}.${s}`);
	break;
}
default:
	console.error("usage: jwt-mint.mjs keygen|sign|hs-with-pubkey|tamper ...");
	process.exit(2);
}
