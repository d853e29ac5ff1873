// A real OpenID provider for the identity tests (npm oidc-provider): discovery, JWKS,
// client-credentials access tokens as RS256 JWTs for the audience "jairouter" (or opaque
// ones with resource=urn:opaque), and RFC 7662 introspection. Test use only (http issuer, fixed client secret).
//
//   node provider.mjs keygen DIR NAME          writes DIR/NAME.jwk (private RSA JWK, kid NAME)
//   node provider.mjs serve PORT DIR K1[,K2..] [--console REDIRECT_URI]
//                                              serves with those keys; K1 signs new tokens;
//                                              --console adds the web console's public client
//                                              "jairouter-console" (authorisation code with
//                                              PKCE, tests/console) and the provider's own
//                                              login and consent pages (any login, any password)
//
// Prints "LISTENING <port>" once it accepts connections.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Provider from "oidc-provider";

const [cmd, ...args] = process.argv.slice(2);

if (cmd === "keygen") {
	const [dir, name] = args;
	fs.mkdirSync(dir, { recursive: true });
	const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
	const jwk = { ...privateKey.export({ format: "jwk" }), kid: name, alg: "RS256", use: "sig" };
	fs.writeFileSync(path.join(dir, `${name}.jwk`), JSON.stringify(jwk));
	process.exit(0);
}
if (cmd !== "serve") {
	console.error("usage: provider.mjs keygen DIR NAME | serve PORT DIR K1[,K2...]");
	process.exit(2);
}

const [port, dir, names, ...rest] = args;
const consoleRedirect = rest[0] === "--console" ? rest[1] : null;
const keys = names.split(",").map((n) => JSON.parse(fs.readFileSync(path.join(dir, `${n}.jwk`), "utf8")));
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
	clients: [{
		client_id: "gw-test",
		client_secret: "gw-test-secret-0123456789abcdef",
		grant_types: ["client_credentials"],
		redirect_uris: [],
		response_types: [],
		scope: "gw.chat gw.admin",
	}, ...(consoleRedirect ? [{
		client_id: "jairouter-console",
		token_endpoint_auth_method: "none",
		grant_types: ["authorization_code"],
		response_types: ["code"],
		redirect_uris: [consoleRedirect],
		scope: "openid gw.chat gw.admin",
	}] : [])],
	jwks: { keys },
	scopes: ["gw.chat", "gw.admin"],
	cookies: { keys: ["test-only-cookie-key"] },
	features: {
		devInteractions: { enabled: !!consoleRedirect },
		clientCredentials: { enabled: true },
		introspection: { enabled: true },
		resourceIndicators: {
			enabled: true,
			defaultResource: () => "urn:jairouter",
			useGrantedResource: () => true,
			// resource=urn:opaque asks for an opaque token (checked by introspection).
			getResourceServerInfo: (ctx, resource) => (resource === "urn:opaque"
				? { scope: "gw.chat gw.admin", audience: "jairouter", accessTokenTTL: 300,
					accessTokenFormat: "opaque" }
				: { scope: "gw.chat gw.admin", audience: "jairouter", accessTokenTTL: 300,
					accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } }),
		},
	},
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`LISTENING ${port}`));
