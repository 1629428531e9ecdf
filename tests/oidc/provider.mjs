// A real OpenID Connect provider (panva/oidc-provider) for hata's single sign-on tests.
// Usage: node provider.mjs '<json>' where json is
//   {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//    "accounts": {"<sub>": {"email": "...", "email_verified": true, "name": "..."}}}
// Logins go through the provider's own development interactions (a login form that takes
// any account id from `accounts`); consent is given by that form too. Prints
// "listening <issuer>" once it accepts connections.
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${config.port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // The ID token carries the claims (hata reads them from it, not from userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['hata test provider cookie key'] },
  async findAccount(ctx, id) {
    const account = config.accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
