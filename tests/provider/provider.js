#!/usr/bin/env node
/*
 * Test-only OAuth 2.0 / OpenID Connect provider for the connected-apps integration tests.
 * Built on oidc-provider 8.x. Plain http on 127.0.0.1 only. NEVER use outside tests.
 *
 * Usage:
 *   node provider.js --port N [--config path.json]
 *
 *   --port 0 picks a free port. When listening, exactly one line is printed on stdout:
 *     READY http://127.0.0.1:<port>
 *   Everything else (warnings, errors) goes to stderr. SIGTERM/SIGINT exit cleanly (code 0).
 *
 * Configuration: a JSON object, taken from (later wins, shallow merge of top-level keys)
 *   1. built-in defaults (below), 2. env PROVIDER_CONFIG (a JSON string), 3. --config file.
 * Unknown keys are rejected (exit 2) so typos in tests fail loudly.
 *
 *   {
 *     "autoApprove": true,          // true: /interaction/:uid logs in `account.sub` and grants every
 *                                   //   requested scope without any page (303 back to /auth/:uid, which
 *                                   //   303s to redirect_uri?code=..&state=..). Cookie-less clients work:
 *                                   //   the provider remembers the interaction cookies per uid itself.
 *                                   // false: oidc-provider's dev login + consent HTML pages (any login works).
 *     "rotateRefreshToken": true,   // true: every refresh issues a new refresh token and consumes the old one;
 *                                   //   reusing a consumed one -> invalid_grant (and, per RFC 9700, the whole
 *                                   //   grant incl. the newest refresh token is revoked). false: never rotate.
 *     "accessTokenTTL": 3600,       // seconds (>= 1); access tokens from authorization_code / refresh_token
 *     "clientCredentialsTTL": null, // seconds; client_credentials tokens (null -> accessTokenTTL)
 *     "refreshTokenTTL": 1209600,   // seconds
 *     "authorizationCodeTTL": 60,   // seconds
 *     "idTokenTTL": 3600,           // seconds
 *     "strictClientAuth": true,     // enforce the per-grant client auth method (see auth_methods below)
 *     "scopes": ["openid", "email", "profile", "offline_access", "read", "write"],
 *                                   // extra scopes are simply echoed for client_credentials
 *     "account": { "sub": "test-user", "email": "test-user@example.com", "email_verified": true,
 *                  "name": "Test User", "given_name": "Test", "family_name": "User",
 *                  "preferred_username": "test-user" },
 *     "clients": [ {
 *       "client_id": "test-client",
 *       "client_secret": "test-secret",
 *       "redirect_uris": ["http://127.0.0.1:8000/callback"],   // may be [] for client_credentials-only
 *       "redirect_uri_prefixes": [],  // optional: any redirect_uri starting with one of these is accepted
 *                                   //   too (for tests that learn the exact URI only in a browser)
 *       "grant_types": ["authorization_code", "refresh_token", "client_credentials"],  // default: all 3
 *       "pkce": true,               // true (default): code_challenge (S256) REQUIRED on /auth.
 *                                   // false: PKCE optional; if a code_challenge is sent it is still
 *                                   //   enforced (code_verifier required at the token endpoint).
 *       "scope": null,              // optional space separated allow-list of scopes for this client
 *       "auth_methods": {           // optional, per grant_type, used when strictClientAuth is true;
 *                                   // values: "client_secret_post" | "client_secret_basic" | "none" | "any"
 *         "authorization_code": "client_secret_post",   // defaults mirror what Frappe sends
 *         "refresh_token": "client_secret_post",
 *         "client_credentials": "client_secret_basic"
 *       },                          // "none" for authorization_code registers a public client
 *                                   //   (token_endpoint_auth_method none: client_id only, PKCE)
 *       // Provider quirks, applied to successful token answers of this client:
 *       "response_format": "json",  // "json" | "form" (always form-encoded) | "form_unless_json"
 *                                   //   (GitHub: form-encoded unless the Accept header asks for JSON)
 *       "omit_expires_in": false,   // true: answers carry no expires_in (GitHub OAuth Apps, Salesforce)
 *       "omit_refresh_token_on_refresh": false,  // true: a refresh answer carries no refresh_token
 *       "extra_fields": {},         // members added to every token answer (e.g. {"instance_url": ...})
 *       "nest_authed_user": false,  // true: a code exchange is answered the Slack way: {"ok": true,
 *                                   //   "app_id", "team", "authed_user": {id, scope, access_token,
 *                                   //   token_type: "user", refresh_token?, expires_in?}}
 *       "scope_separator": " "      // "," answers the granted scopes separated by commas
 *     } ],
 *     "discoveryAuthMethods": null  // an array replaces the discovery document's
 *                                   //   token_endpoint_auth_methods_supported
 *   }
 *
 * Client authentication: oidc-provider 8.8 registers one token_endpoint_auth_method per client but,
 * for client_secret_basic/client_secret_post, accepts EITHER of the two secret methods. Clients are
 * registered as client_secret_post and a pre-middleware enforces the method per grant_type
 * (`auth_methods`, default: post for authorization_code/refresh_token, Basic for client_credentials);
 * a mismatch answers 401 {"error":"invalid_client"}. Revocation and introspection accept both.
 * A request must not use both (Basic header + client_secret in the body) -> invalid_request.
 *
 * Refresh tokens are issued for every authorization_code exchange of a client that has the
 * refresh_token grant, with or without offline_access in the scope, and do not expire with the
 * login session. Unknown authorization parameters (access_type=offline, ...) are ignored.
 *
 * Endpoints (see /.well-known/openid-configuration): /auth, /token, /token/revocation,
 * /token/introspection, /me (userinfo), /jwks, /session/end.
 * Test-only endpoints (plain JSON):
 *   GET  /__test/requests -> [{method, path, headers: {authorization?, "content-type"?}, form: [[k, v], ...],
 *                              status, error?}] every request to the token and revocation endpoints, in order
 *                              (status/error are filled in once the response is produced)
 *   POST /__test/reset    -> clears requests and stats; 204
 *   GET  /__test/stats    -> {token_requests, refresh_requests, invalid_grant, authorization_code_requests,
 *                             client_credentials_requests, revocation_requests}
 *   GET  /__test/config   -> the effective configuration
 *   POST /__test/refresh_tokens {client_id, count, accountIdPrefix?} -> {refresh_tokens: [...]}
 *                            mints `count` real refresh tokens (one grant each, scope
 *                            "openid email profile", account `<prefix><i>`) for seeding many
 *                            connections without as many browser flows
 *   stats also hold token_in_flight (token requests being answered now) and
 *   max_token_in_flight (the most at one moment since the last reset).
 *
 *   "tokenDelayMs": 0              // config: answer every token request this much later (slow mode)
 */

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import process from 'node:process';

import Provider from 'oidc-provider';
import QuickLRU from 'quick-lru';
import { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';

// oidc-provider's in-memory store keeps 1,000 entries; tests seed up to 100,000 connections.
setStorage(new QuickLRU({ maxSize: 500000 }));

// ---------------------------------------------------------------------------------------------
// arguments + configuration
// ---------------------------------------------------------------------------------------------

function die(msg, code = 2) {
  process.stderr.write(`provider.js: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const out = { port: undefined, config: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const take = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    if (a === '--port') out.port = take();
    else if (a.startsWith('--port=')) out.port = a.slice(7);
    else if (a === '--config') out.config = take();
    else if (a.startsWith('--config=')) out.config = a.slice(9);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node provider.js --port N [--config path.json]\n');
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  if (out.port === undefined) die('--port N is required (0 = any free port)');
  const port = Number(out.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) die(`invalid port ${out.port}`);
  out.port = port;
  return out;
}

const DEFAULT_AUTH_METHODS = {
  authorization_code: 'client_secret_post',
  refresh_token: 'client_secret_post',
  client_credentials: 'client_secret_basic',
};
const AUTH_METHOD_VALUES = new Set(['client_secret_post', 'client_secret_basic', 'none', 'any']);
const RESPONSE_FORMATS = new Set(['json', 'form', 'form_unless_json']);
const GRANT_TYPES = new Set(['authorization_code', 'refresh_token', 'client_credentials']);

const DEFAULTS = {
  autoApprove: true,
  rotateRefreshToken: true,
  accessTokenTTL: 3600,
  clientCredentialsTTL: null,
  refreshTokenTTL: 14 * 24 * 3600,
  authorizationCodeTTL: 60,
  tokenDelayMs: 0,
  discoveryAuthMethods: null,
  idTokenTTL: 3600,
  strictClientAuth: true,
  scopes: ['openid', 'email', 'profile', 'offline_access', 'read', 'write'],
  account: {
    sub: 'test-user',
    email: 'test-user@example.com',
    email_verified: true,
    name: 'Test User',
    given_name: 'Test',
    family_name: 'User',
    preferred_username: 'test-user',
  },
  clients: [{
    client_id: 'test-client',
    client_secret: 'test-secret',
    redirect_uris: ['http://127.0.0.1:8000/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  }],
};

const CLIENT_KEYS = new Set(['client_id', 'client_secret', 'redirect_uris', 'redirect_uri_prefixes', 'grant_types', 'pkce', 'scope', 'auth_methods',
  'response_format', 'omit_expires_in', 'omit_refresh_token_on_refresh', 'extra_fields', 'nest_authed_user', 'scope_separator']);

function loadConfig(path) {
  let cfg = { ...DEFAULTS };
  const sources = [];
  if (process.env.PROVIDER_CONFIG) sources.push(['env PROVIDER_CONFIG', process.env.PROVIDER_CONFIG]);
  if (path) {
    try {
      sources.push([path, fs.readFileSync(path, 'utf8')]);
    } catch (err) {
      die(`cannot read config ${path}: ${err.message}`);
    }
  }
  for (const [name, text] of sources) {
    let obj;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      die(`invalid JSON in ${name}: ${err.message}`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) die(`${name} must hold a JSON object`);
    const unknown = Object.keys(obj).filter((k) => !(k in DEFAULTS));
    if (unknown.length) die(`unknown config key(s) in ${name}: ${unknown.join(', ')}`);
    cfg = { ...cfg, ...obj };
  }

  const posInt = (k, allowNull = false) => {
    if (allowNull && cfg[k] === null) return;
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) die(`${k} must be a positive integer (seconds)`);
  };
  posInt('accessTokenTTL');
  posInt('clientCredentialsTTL', true);
  posInt('refreshTokenTTL');
  posInt('authorizationCodeTTL');
  posInt('idTokenTTL');
  if (!Number.isInteger(cfg.tokenDelayMs) || cfg.tokenDelayMs < 0) die('tokenDelayMs must be a non-negative integer');
  for (const k of ['autoApprove', 'rotateRefreshToken', 'strictClientAuth']) {
    if (typeof cfg[k] !== 'boolean') die(`${k} must be a boolean`);
  }
  if (!Array.isArray(cfg.scopes) || cfg.scopes.some((s) => typeof s !== 'string')) die('scopes must be an array of strings');
  if (cfg.discoveryAuthMethods !== null
    && (!Array.isArray(cfg.discoveryAuthMethods) || cfg.discoveryAuthMethods.some((s) => typeof s !== 'string'))) {
    die('discoveryAuthMethods must be null or an array of strings');
  }
  cfg.scopes = [...new Set(['openid', 'email', 'profile', 'offline_access', ...cfg.scopes])];
  if (!cfg.account || typeof cfg.account.sub !== 'string' || !cfg.account.sub) die('account.sub must be a non-empty string');
  if (!Array.isArray(cfg.clients) || cfg.clients.length === 0) die('clients must be a non-empty array');

  const seen = new Set();
  cfg.clients = cfg.clients.map((c, i) => {
    if (!c || typeof c !== 'object') die(`clients[${i}] must be an object`);
    const unknown = Object.keys(c).filter((k) => !CLIENT_KEYS.has(k));
    if (unknown.length) die(`unknown key(s) in clients[${i}]: ${unknown.join(', ')}`);
    if (typeof c.client_id !== 'string' || !c.client_id) die(`clients[${i}].client_id is required`);
    if (typeof c.client_secret !== 'string' || !c.client_secret) die(`clients[${i}].client_secret is required`);
    if (seen.has(c.client_id)) die(`duplicate client_id ${c.client_id}`);
    seen.add(c.client_id);
    const grantTypes = c.grant_types ?? ['authorization_code', 'refresh_token', 'client_credentials'];
    if (!Array.isArray(grantTypes) || grantTypes.some((g) => !GRANT_TYPES.has(g))) {
      die(`clients[${i}].grant_types must be a subset of ${[...GRANT_TYPES].join(', ')}`);
    }
    const authMethods = { ...DEFAULT_AUTH_METHODS, ...(c.auth_methods ?? {}) };
    for (const [g, m] of Object.entries(authMethods)) {
      if (!GRANT_TYPES.has(g) || !AUTH_METHOD_VALUES.has(m)) die(`clients[${i}].auth_methods: bad entry ${g}=${m}`);
    }
    const prefixes = c.redirect_uri_prefixes ?? [];
    if (!Array.isArray(prefixes) || prefixes.some((x) => typeof x !== 'string' || !x)) {
      die(`clients[${i}].redirect_uri_prefixes must be an array of non-empty strings`);
    }
    const responseFormat = c.response_format ?? 'json';
    if (!RESPONSE_FORMATS.has(responseFormat)) die(`clients[${i}].response_format must be one of ${[...RESPONSE_FORMATS].join(', ')}`);
    const extraFields = c.extra_fields ?? {};
    if (!extraFields || typeof extraFields !== 'object' || Array.isArray(extraFields)) die(`clients[${i}].extra_fields must be an object`);
    const scopeSeparator = c.scope_separator ?? ' ';
    if (![' ', ','].includes(scopeSeparator)) die(`clients[${i}].scope_separator must be " " or ","`);
    for (const k of ['omit_expires_in', 'omit_refresh_token_on_refresh', 'nest_authed_user']) {
      if (c[k] !== undefined && typeof c[k] !== 'boolean') die(`clients[${i}].${k} must be a boolean`);
    }
    return {
      response_format: responseFormat,
      omit_expires_in: c.omit_expires_in ?? false,
      omit_refresh_token_on_refresh: c.omit_refresh_token_on_refresh ?? false,
      extra_fields: extraFields,
      nest_authed_user: c.nest_authed_user ?? false,
      scope_separator: scopeSeparator,
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris ?? [],
      redirect_uri_prefixes: prefixes,
      grant_types: grantTypes,
      pkce: c.pkce ?? true,
      scope: c.scope ?? null,
      auth_methods: authMethods,
    };
  });
  return cfg;
}

const args = parseArgs(process.argv.slice(2));
const config = loadConfig(args.config);
const clientsById = new Map(config.clients.map((c) => [c.client_id, c]));

// ---------------------------------------------------------------------------------------------
// test introspection state
// ---------------------------------------------------------------------------------------------

let recorded = [];
let stats;
function resetStats() {
  stats = {
    token_requests: 0,
    refresh_requests: 0,
    invalid_grant: 0,
    authorization_code_requests: 0,
    client_credentials_requests: 0,
    revocation_requests: 0,
    token_in_flight: stats ? stats.token_in_flight : 0,
    max_token_in_flight: 0,
  };
}
resetStats();

// uid -> Map(cookieName -> value); lets cookie-less HTTP clients complete the autoApprove flow.
const interactionCookies = new Map();

function parseSetCookie(list, into) {
  for (const line of list ?? []) {
    const first = line.split(';', 1)[0];
    const eq = first.indexOf('=');
    if (eq <= 0) continue;
    const name = first.slice(0, eq).trim();
    const value = first.slice(eq + 1).trim();
    const expired = /expires=Thu, 01 Jan 1970/i.test(line) || value === '';
    if (expired) into.delete(name);
    else into.set(name, value);
  }
}

function parseCookieHeader(header) {
  const m = new Map();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    m.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return m;
}

function readBody(req, limit = 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function decodeBasic(header) {
  // returns client_id from an Authorization: Basic header (RFC 6749 2.3.1 form-encoding) or undefined
  const parts = header.split(' ');
  if (parts.length !== 2 || parts[0].toLowerCase() !== 'basic') return undefined;
  const raw = Buffer.from(parts[1], 'base64').toString('utf8');
  const i = raw.indexOf(':');
  if (i === -1) return undefined;
  try {
    return decodeURIComponent(raw.slice(0, i).replace(/\+/g, '%20'));
  } catch {
    return raw.slice(0, i);
  }
}

// ---------------------------------------------------------------------------------------------
// provider quirks (per client, on successful token answers)
// ---------------------------------------------------------------------------------------------

function applyQuirks(ctx, client, grantType) {
  const body = ctx.body;
  if (ctx.status !== 200 || !body || typeof body !== 'object' || Buffer.isBuffer(body) || !body.access_token) return;
  let out = { ...body, ...client.extra_fields };
  if (client.omit_expires_in) delete out.expires_in;
  if (client.omit_refresh_token_on_refresh && grantType === 'refresh_token') delete out.refresh_token;
  if (client.scope_separator === ',' && typeof out.scope === 'string') out.scope = out.scope.split(' ').join(',');
  if (client.nest_authed_user && grantType === 'authorization_code') {
    const user = { id: 'U0TEST', scope: out.scope, access_token: out.access_token, token_type: 'user' };
    if (out.refresh_token !== undefined) user.refresh_token = out.refresh_token;
    if (out.expires_in !== undefined) user.expires_in = out.expires_in;
    const rest = { ...out };
    for (const k of ['access_token', 'token_type', 'scope', 'refresh_token', 'expires_in']) delete rest[k];
    out = { ok: true, app_id: 'A0TEST', team: { id: 'T0TEST', name: 'Test Team' }, ...rest, authed_user: user };
  }
  const accept = String(ctx.headers.accept ?? '');
  const form = client.response_format === 'form'
    || (client.response_format === 'form_unless_json' && !accept.includes('application/json'));
  if (form) {
    const flat = Object.entries(out).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
    ctx.body = new URLSearchParams(flat).toString();
    ctx.type = 'application/x-www-form-urlencoded';
  } else {
    ctx.body = out;
  }
}

// ---------------------------------------------------------------------------------------------
// provider
// ---------------------------------------------------------------------------------------------

function accountClaims(id) {
  if (id === config.account.sub) return { ...config.account, sub: id };
  return {
    sub: id,
    email: `${id}@example.com`,
    email_verified: true,
    name: id,
    preferred_username: id,
  };
}

function buildProvider(issuer) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

  const oidcConfig = {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: c.grant_types,
      response_types: c.grant_types.includes('authorization_code') ? ['code'] : [],
      token_endpoint_auth_method: c.auth_methods.authorization_code === 'none' ? 'none' : 'client_secret_post',
      ...(c.scope ? { scope: c.scope } : {}),
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: config.scopes,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale', 'zoneinfo'],
    },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return accountClaims(id);
        },
      };
    },
    features: {
      devInteractions: { enabled: !config.autoApprove },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    pkce: {
      methods: ['S256'],
      required(ctx, client) {
        return clientsById.get(client.clientId)?.pkce !== false;
      },
    },
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    async expiresWithSession() {
      return false;
    },
    rotateRefreshToken: config.rotateRefreshToken,
    ttl: {
      AccessToken: config.accessTokenTTL,
      ClientCredentials: config.clientCredentialsTTL ?? config.accessTokenTTL,
      RefreshToken: config.refreshTokenTTL,
      AuthorizationCode: config.authorizationCodeTTL,
      IdToken: config.idTokenTTL,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 365 * 24 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>oops! something went wrong</h1><pre>${
        Object.entries(out).map(([k, v]) => `${k}: ${String(v).replace(/[<>&]/g, '')}`).join('\n')
      }</pre></body></html>`;
    },
  };
  if (config.autoApprove) {
    oidcConfig.interactions = { url: (ctx, interaction) => `/interaction/${interaction.uid}` };
  }

  const provider = new Provider(issuer, oidcConfig);

  const exactRedirectUriAllowed = provider.Client.prototype.redirectUriAllowed;
  provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    if (exactRedirectUriAllowed.call(this, value)) return true;
    const prefixes = clientsById.get(this.clientId)?.redirect_uri_prefixes ?? [];
    return typeof value === 'string' && prefixes.some((p) => value.startsWith(p));
  };

  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`provider.js: server_error on ${ctx.method} ${ctx.path}: ${err.stack || err}\n`);
  });

  const paths = {
    token: new URL(provider.urlFor('token')).pathname,
    revocation: new URL(provider.urlFor('revocation')).pathname,
  };

  // --- test endpoints -------------------------------------------------------------------------
  provider.use(async (ctx, next) => {
    if (!ctx.path.startsWith('/__test/')) return next();
    ctx.set('cache-control', 'no-store');
    if (ctx.method === 'GET' && ctx.path === '/__test/requests') {
      ctx.body = recorded;
    } else if (ctx.method === 'GET' && ctx.path === '/__test/stats') {
      ctx.body = stats;
    } else if (ctx.method === 'GET' && ctx.path === '/__test/config') {
      ctx.body = config;
    } else if (ctx.method === 'POST' && ctx.path === '/__test/refresh_tokens') {
      const body = JSON.parse((await readBody(ctx.req)) || '{}');
      const client = await provider.Client.find(body.client_id);
      const count = Number(body.count);
      if (!client || !Number.isInteger(count) || count < 1 || count > 100000) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request' };
        return undefined;
      }
      const prefix = typeof body.accountIdPrefix === 'string' ? body.accountIdPrefix : 'seeded-';
      const scope = 'openid email profile';
      const tokens = [];
      for (let i = 0; i < count; i += 1) {
        const accountId = `${prefix}${i}`;
        const grant = new provider.Grant({ accountId, clientId: client.clientId });
        grant.addOIDCScope(scope);
        const grantId = await grant.save();
        const rt = new provider.RefreshToken({
          client, accountId, grantId, scope, gty: 'authorization_code', expiresWithSession: false,
          iiat: Math.floor(Date.now() / 1000), rotations: 0,
        });
        tokens.push(await rt.save());
      }
      ctx.body = { refresh_tokens: tokens };
    } else if (ctx.method === 'POST' && ctx.path === '/__test/reset') {
      recorded = [];
      resetStats();
      ctx.status = 204;
    } else {
      ctx.status = 404;
      ctx.body = { error: 'not_found' };
    }
    return undefined;
  });

  // --- request recording + per-grant client auth enforcement ---------------------------------
  provider.use(async (ctx, next) => {
    const isToken = ctx.path === paths.token;
    const isRevocation = ctx.path === paths.revocation;
    if (!(isToken || isRevocation)) return next();

    let form = [];
    if (ctx.method === 'POST' && ctx.req.readable) {
      const body = await readBody(ctx.req);
      // oidc-provider's body parser falls back to req.body when the stream was already consumed
      ctx.req.body = body;
      if (ctx.is('application/x-www-form-urlencoded')) form = [...new URLSearchParams(body)];
    }
    const headers = {};
    if (ctx.headers.authorization !== undefined) headers.authorization = ctx.headers.authorization;
    if (ctx.headers['content-type'] !== undefined) headers['content-type'] = ctx.headers['content-type'];
    if (ctx.headers.accept !== undefined) headers.accept = ctx.headers.accept;
    const entry = { method: ctx.method, path: ctx.path, headers, form };
    recorded.push(entry);

    const get = (k) => form.find(([name]) => name === k)?.[1];
    const grantType = get('grant_type');
    if (isToken) {
      stats.token_requests += 1;
      if (grantType === 'refresh_token') stats.refresh_requests += 1;
      if (grantType === 'authorization_code') stats.authorization_code_requests += 1;
      if (grantType === 'client_credentials') stats.client_credentials_requests += 1;
    } else {
      stats.revocation_requests += 1;
    }

    if (isToken) {
      stats.token_in_flight += 1;
      stats.max_token_in_flight = Math.max(stats.max_token_in_flight, stats.token_in_flight);
    }
    try {
      if (isToken && config.tokenDelayMs > 0) await new Promise((r) => { setTimeout(r, config.tokenDelayMs); });
      if (isToken && config.strictClientAuth && GRANT_TYPES.has(grantType)) {
        const basic = ctx.headers.authorization !== undefined;
        const clientId = basic ? decodeBasic(ctx.headers.authorization) : get('client_id');
        const client = clientsById.get(clientId);
        const used = basic ? 'client_secret_basic' : (get('client_secret') !== undefined ? 'client_secret_post' : 'none');
        const expected = client?.auth_methods[grantType];
        if (client && expected !== 'any' && !(basic && get('client_secret') !== undefined) && used !== expected) {
          ctx.status = 401;
          ctx.set('cache-control', 'no-store');
          ctx.body = {
            error: 'invalid_client',
            error_description: `test provider: grant_type=${grantType} for client ${clientId} must authenticate with ${expected}, got ${used}`,
          };
          return undefined;
        }
      }
      await next();
      if (isToken) {
        const basic = ctx.headers.authorization !== undefined;
        const client = clientsById.get(basic ? decodeBasic(ctx.headers.authorization) : get('client_id'));
        if (client) applyQuirks(ctx, client, grantType);
      }
    } finally {
      if (isToken) stats.token_in_flight -= 1;
      entry.status = ctx.status;
      const error = ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) ? ctx.body.error : undefined;
      if (error) entry.error = error;
      if (isToken && error === 'invalid_grant') stats.invalid_grant += 1;
    }
    return undefined;
  });

  // --- discovery override ----------------------------------------------------------------------
  if (config.discoveryAuthMethods !== null) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') {
        ctx.body = { ...ctx.body, token_endpoint_auth_methods_supported: config.discoveryAuthMethods };
      }
    });
  }

  // --- autoApprove interactions ---------------------------------------------------------------
  if (config.autoApprove) {
    // remember the cookies oidc-provider sets when it starts an interaction, keyed by uid, and
    // replay them for cookie-less clients on /interaction/:uid and /auth/:uid (resume).
    provider.use(async (ctx, next) => {
      const m = /^\/(?:interaction|auth)\/([A-Za-z0-9_-]+)$/.exec(ctx.path);
      if (m && interactionCookies.has(m[1])) {
        const have = parseCookieHeader(ctx.headers.cookie);
        for (const [k, v] of interactionCookies.get(m[1])) if (!have.has(k)) have.set(k, v);
        ctx.req.headers.cookie = [...have].map(([k, v]) => `${k}=${v}`).join('; ');
      }
      await next();
      const location = ctx.response.get('location');
      const im = /\/interaction\/([A-Za-z0-9_-]+)$/.exec(location || '');
      if (im) {
        const jar = new Map(m ? interactionCookies.get(m[1]) ?? [] : []);
        parseSetCookie(ctx.response.get('set-cookie') || [], jar);
        interactionCookies.set(im[1], jar);
        setTimeout(() => interactionCookies.delete(im[1]), 3600 * 1000).unref();
      } else if (m && ctx.path.startsWith('/auth/')) {
        interactionCookies.delete(m[1]);
      }
    });

    provider.use(async (ctx, next) => {
      const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(ctx.path);
      if (!m || ctx.method !== 'GET') return next();
      ctx.set('cache-control', 'no-store');
      try {
        const details = await provider.interactionDetails(ctx.req, ctx.res);
        const { params, grantId } = details;
        const accountId = details.session?.accountId ?? config.account.sub;
        let grant = grantId ? await provider.Grant.find(grantId) : undefined;
        if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
        if (params.scope) grant.addOIDCScope(params.scope);
        if (params.claims) {
          try {
            const claims = JSON.parse(params.claims);
            for (const use of ['id_token', 'userinfo']) {
              if (claims[use]) grant.addOIDCClaims(Object.keys(claims[use]));
            }
          } catch { /* ignore malformed claims parameter */ }
        }
        const savedGrantId = await grant.save();
        const result = {
          login: { accountId, remember: true },
          consent: { grantId: savedGrantId },
        };
        const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
        ctx.status = 303;
        ctx.redirect(returnTo);
      } catch (err) {
        ctx.status = err.statusCode || 500;
        ctx.body = { error: err.error || 'server_error', error_description: err.error_description || err.message };
        if (ctx.status >= 500) process.stderr.write(`provider.js: interaction failed: ${err.stack || err}\n`);
      }
      return undefined;
    });
  }

  return provider;
}

// ---------------------------------------------------------------------------------------------
// server lifecycle
// ---------------------------------------------------------------------------------------------

process.on('unhandledRejection', (err) => {
  process.stderr.write(`provider.js: unhandled rejection: ${err?.stack || err}\n`);
});
process.on('uncaughtException', (err) => {
  process.stderr.write(`provider.js: uncaught exception: ${err?.stack || err}\n`);
  process.exit(1);
});

const server = http.createServer();
server.keepAliveTimeout = 5000;

let shuttingDown = false;
function shutdown() {
  if (shuttingDown) return;
  shuttingDown = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.on('error', (err) => die(`cannot listen on 127.0.0.1:${args.port}: ${err.message}`, 1));
server.listen(args.port, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  let provider;
  try {
    provider = buildProvider(issuer);
  } catch (err) {
    die(`invalid provider configuration: ${err.error_description || err.message}`, 2);
  }
  provider.app.on('error', () => { /* logged via server_error; avoid koa's default stderr dump */ });
  const handler = provider.callback();
  server.on('request', handler);
  process.stdout.write(`READY ${issuer}\n`);
});
