// A real OpenID Connect provider (panva's oidc-provider, with its development login and
// consent pages) on loopback, for the tests:
//   node scripts/oidc-provider.cjs <port> '<clients JSON>' [--exit-with-stdin]
// Clients JSON: [{client_id, client_secret?, redirect_uris, id_token_signed_response_alg?}];
// a client without a secret is public. Any login signs in with any password (see
// findAccount). Prints "ready" once listening. With --exit-with-stdin it stops when its
// standard input closes, i.e. when the process that started it ends, however it ends.
const http = require('node:http');
const { generateKeyPairSync, randomBytes } = require('node:crypto');

const port = Number(process.argv[2]);
let clients;
try {
  clients = JSON.parse(process.argv[3]);
} catch {
  clients = undefined;
}
if (!port || !Array.isArray(clients)) {
  console.error("usage: node scripts/oidc-provider.cjs <port> '<clients JSON>' [--exit-with-stdin]");
  process.exit(2);
}

// Fresh signing keys each run, one per family, so a client can ask for RS256 (the
// default), ES256 or EdDSA ID tokens; the relying party only ever trusts the JWKS.
const jwk = (kid, ...args) => ({
  ...generateKeyPairSync(...args).privateKey.export({ format: 'jwk' }),
  kid,
});
const jwks = {
  keys: [
    jwk('rsa-1', 'rsa', { modulusLength: 2048 }),
    jwk('ec-1', 'ec', { namedCurve: 'P-256' }),
    jwk('ed-1', 'ed25519'),
  ],
};

// Accounts need no registry: the login *is* the account. `sub` is the login; a login of
// the form `<tag>:<email>` lets tests pick a subject and an email separately, and a tag
// containing "unverified" gives an unverified email (a provider that does not vouch for it).
function findAccount(ctx, id) {
  const colon = id.indexOf(':');
  const tag = colon >= 0 ? id.slice(0, colon) : id;
  const email = colon >= 0 ? id.slice(colon + 1) : id;
  return {
    accountId: id,
    claims: () => ({
      sub: id,
      email,
      email_verified: !tag.includes('unverified'),
      name: `Person ${email.split('@')[0]}`,
    }),
  };
}

(async () => {
  // oidc-provider is an ES module.
  const { default: Provider } = await import('oidc-provider');
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: clients.map(({ client_id, client_secret, redirect_uris, id_token_signed_response_alg }) => ({
      client_id,
      redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      ...(client_secret
        ? { client_secret }
        : { token_endpoint_auth_method: 'none' }),
      ...(id_token_signed_response_alg ? { id_token_signed_response_alg } : {}),
    })),
    jwks,
    findAccount,
    scopes: ['openid', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Like Google: the requested claims go in the ID token, not only behind userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [randomBytes(32).toString('hex')] },
  });
  http.createServer(provider.callback()).listen(port, '127.0.0.1', () => console.log('ready'));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});

if (process.argv.includes('--exit-with-stdin')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
