// Drives the service with frappe-js-sdk (npm), unchanged, as a frontend written for Frappe does.
//
// Run by tests/api/frappe_clients.rs against a fresh service. Every check prints one line,
// `ok   <name>` or `FAIL <name>: <what differed>`, and the last line is `summary: N ok, M failing`.
// Each expectation is what the same SDK call gets from a Frappe v15 site (the recordings in
// tests/fixtures/frappe-reference, and Frappe v15's frappe/client.py, frappe/api, frappe/model/rename_doc.py).
//
// The SDK resolves with the body (or its `data`/`message`) and rejects with
// `{...body, httpStatus, httpStatusText, message: body.message ?? <its own text>,
//   exception: body.exception ?? body.exc_type}`.
//
// In a browser the session cookie rides along by itself; under node a small cookie jar on the
// SDK's own axios instance plays the browser's part for password logins.
//
// Environment: as tests/clients/frappe_client_check.py.

import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const { FrappeApp } = require('frappe-js-sdk');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const URL = env('SERVICE_URL');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const [SM_EMAIL, SM_PASSWORD, SM_KEY, SM_SECRET] = ['SM_EMAIL', 'SM_PASSWORD', 'SM_KEY', 'SM_SECRET'].map(env);
const [PLAIN_EMAIL, PLAIN_PASSWORD, PLAIN_KEY, PLAIN_SECRET] = ['PLAIN_EMAIL', 'PLAIN_PASSWORD', 'PLAIN_KEY', 'PLAIN_SECRET'].map(env);
const [OTHER_EMAIL, OTHER_KEY, OTHER_SECRET] = ['OTHER_EMAIL', 'OTHER_KEY', 'OTHER_SECRET'].map(env);

const CA = 'Connected App';
const TC = 'Token Cache';
const CALLBACK = '/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/';
const HAS_TOKEN = 'frappe.integrations.doctype.connected_app.connected_app.has_token';
const NAME_RE = /^[0-9a-v]{10}$/;

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    let detail;
    if (e instanceof Error) {
      const where = (e.stack || '').split('\n').find((l) => l.includes('frappe_js_sdk_check.mjs'));
      detail = `${e.message.replace(/\n+/g, ' ')}${where ? ` (${where.trim()})` : ''}`;
    } else {
      detail = `rejected with ${JSON.stringify(e)}`;
    }
    console.log(`FAIL ${name}: ${detail}`);
  }
}

/** A password session: the SDK's axios instance with a cookie jar, as a browser keeps one. */
function sessionApp() {
  const app = new FrappeApp(URL);
  const jar = new Map();
  app.axios.interceptors.request.use((config) => {
    if (jar.size) config.headers.Cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    return config;
  });
  const keep = (response) => {
    for (const c of response?.headers?.['set-cookie'] ?? []) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  };
  app.axios.interceptors.response.use(
    (r) => {
      keep(r);
      return r;
    },
    (e) => {
      keep(e?.response);
      return Promise.reject(e);
    },
  );
  return app;
}

function tokenApp(key, secret) {
  return new FrappeApp(URL, { useToken: true, token: () => `${key}:${secret}`, type: 'token' });
}

/** The promise must reject; returns the SDK's error object. */
async function rejects(promise) {
  let value;
  try {
    value = await promise;
  } catch (e) {
    return e;
  }
  throw new Error(`expected a rejection, resolved with ${JSON.stringify(value)}`);
}

/** Rejects with this HTTP status and `exception` (string, or RegExp). */
async function frappeError(promise, httpStatus, exception) {
  const e = await rejects(promise);
  if (e instanceof Error) throw e;
  assert.equal(e.httpStatus, httpStatus, `status of ${JSON.stringify(e)}`);
  if (exception instanceof RegExp) assert.match(e.exception, exception);
  else assert.equal(e.exception, exception);
  return e;
}

function serverMessages(e) {
  return JSON.parse(e._server_messages || '[]').map((m) => JSON.parse(m).message);
}

const sortedNames = (rows) => rows.map((r) => r.name).sort();

const sm = tokenApp(SM_KEY, SM_SECRET);
const plain = tokenApp(PLAIN_KEY, PLAIN_SECRET);
const other = tokenApp(OTHER_KEY, OTHER_SECRET);
const smDb = sm.db();
const plainDb = plain.db();
const s = {};

// --- logging in -------------------------------------------------------------------------------

await check('login with password: Administrator', async () => {
  const app = sessionApp();
  const res = await app.auth().loginWithUsernamePassword({ username: 'Administrator', password: ADMIN_PASSWORD });
  assert.deepEqual(res, { message: 'Logged In', home_page: '/app', full_name: 'Administrator' });
  assert.equal(await app.auth().getLoggedInUser(), 'Administrator');
  s.admin = app;
});

await check('login with password: a System Manager', async () => {
  const app = sessionApp();
  const res = await app.auth().loginWithUsernamePassword({ username: SM_EMAIL, password: SM_PASSWORD });
  assert.equal(res.message, 'Logged In');
  assert.equal(await app.auth().getLoggedInUser(), SM_EMAIL);
});

await check('login with password: a plain user (Website User: "No App")', async () => {
  const app = sessionApp();
  const res = await app.auth().loginWithUsernamePassword({ username: PLAIN_EMAIL, password: PLAIN_PASSWORD });
  assert.deepEqual(res, { message: 'No App', home_page: '/me', full_name: 'plain' });
  assert.equal(await app.auth().getLoggedInUser(), PLAIN_EMAIL);
  s.plainSession = app;
});

await check('login with a wrong password is rejected', async () => {
  const e = await frappeError(
    sessionApp().auth().loginWithUsernamePassword({ username: SM_EMAIL, password: 'wrong' }),
    401,
    'frappe.exceptions.AuthenticationError',
  );
  assert.equal(e.message, 'Invalid login credentials');
});

await check('logout ends the session', async () => {
  const app = sessionApp();
  await app.auth().loginWithUsernamePassword({ username: SM_EMAIL, password: SM_PASSWORD });
  assert.equal(await app.auth().logout(), undefined);
  await frappeError(
    app.auth().getLoggedInUser(),
    403,
    'frappe.exceptions.PermissionError: <details><summary>You are not permitted to access this resource.'
      + '</summary>Function <strong>frappe.auth.get_logged_user</strong> is not whitelisted.</details>',
  );
});

await check('API keys: a System Manager and a plain user', async () => {
  assert.equal(await sm.auth().getLoggedInUser(), SM_EMAIL);
  assert.equal(await plain.auth().getLoggedInUser(), PLAIN_EMAIL);
});

await check('API key with a wrong secret is rejected', async () => {
  await frappeError(tokenApp(SM_KEY, 'wrong').db().getDocList(CA), 401, 'frappe.exceptions.AuthenticationError');
});

await check('no credentials: a list is refused', async () => {
  const e = await frappeError(new FrappeApp(URL).db().getDocList(CA), 403, 'frappe.exceptions.PermissionError');
  assert.equal(e._error_message, 'No permission for Connected App');
});

// --- documents --------------------------------------------------------------------------------

await check('createDoc with both child tables', async () => {
  const doc = await smDb.createDoc(CA, {
    provider_name: 'Alpha',
    client_id: 'alpha-id',
    client_secret: 'alpha-secret',
    authorization_uri: 'https://alpha.example/authorize',
    token_uri: 'https://alpha.example/token',
    scopes: [{ scope: 'openid' }, { scope: 'email' }],
    query_parameters: [{ key: 'prompt', value: 'consent' }],
  });
  assert.match(doc.name, NAME_RE);
  assert.equal(doc.client_secret, '************');
  assert.equal(doc.redirect_uri, URL + CALLBACK + doc.name);
  assert.deepEqual(doc.scopes.map((r) => [r.scope, r.idx, r.parent, r.parentfield, r.doctype, r.__unsaved]), [
    ['openid', 1, doc.name, 'scopes', 'OAuth Scope', 1],
    ['email', 2, doc.name, 'scopes', 'OAuth Scope', 1],
  ]);
  assert.deepEqual(doc.query_parameters.map((r) => [r.key, r.value]), [['prompt', 'consent']]);
  s.alpha = doc;
});

for (const [provider, clientId] of [['Beta', 'shared-id'], ['Gamma', 'shared-id']]) {
  await check(`createDoc ${provider}`, async () => {
    const doc = await smDb.createDoc(CA, { provider_name: provider, client_id: clientId, scopes: [] });
    assert.equal(doc.provider_name, provider);
    assert.deepEqual(doc.scopes, []);
    s[provider.toLowerCase()] = doc.name;
  });
}
const ALPHA = s.alpha?.name ?? 'missing-alpha';
const BETA = s.beta ?? 'missing-beta';
const GAMMA = s.gamma ?? 'missing-gamma';

await check('createDoc five apps to page through', async () => {
  s.page = [];
  for (let i = 0; i < 5; i++) {
    s.page.push((await smDb.createDoc(CA, { provider_name: `Page ${i}`, client_id: 'page-id' })).name);
  }
});

await check('createDoc without provider_name is rejected (MandatoryError)', async () => {
  const e = await frappeError(
    smDb.createDoc(CA, { client_id: 'no-provider' }),
    417,
    /^frappe\.exceptions\.MandatoryError: \[Connected App, [0-9a-v]{10}\]: provider_name$/,
  );
  assert.deepEqual(serverMessages(e), ['Error: Value missing for Connected App: Provider Name']);
  assert.equal(await smDb.getCount(CA, [['client_id', '=', 'no-provider']]), 0);
});

await check('createDoc by a plain user is refused', async () => {
  const e = await frappeError(plainDb.createDoc(CA, { provider_name: 'Nope' }), 403, 'frappe.exceptions.PermissionError');
  assert.equal(e._error_message, "You need the 'create' permission on <strong>Connected App</strong>  to perform this action.");
  assert.equal(await smDb.getCount(CA, [['provider_name', '=', 'Nope']]), 0);
});

await check('getDoc', async () => {
  const doc = await plainDb.getDoc(CA, ALPHA);
  assert.equal(doc.client_id, 'alpha-id');
  assert.equal(doc.client_secret, '************');
  assert.deepEqual(doc.scopes.map((r) => r.scope), ['openid', 'email']);
  assert.equal(doc.scopes[0].__unsaved, undefined);
});

await check('getDoc of a missing document is rejected with 404', async () => {
  const e = await frappeError(smDb.getDoc(CA, 'doesnotexist'), 404, 'DoesNotExistError');
  assert.deepEqual(serverMessages(e), ['Connected App doesnotexist not found']);
});

await check('updateDoc replaces a child table, keeping rows sent with their name', async () => {
  const kept = s.alpha.scopes[0];
  const doc = await smDb.updateDoc(CA, ALPHA, {
    provider_name: 'Alpha Two',
    scopes: [{ name: kept.name, scope: 'openid' }, { scope: 'profile' }],
  });
  assert.equal(doc.provider_name, 'Alpha Two');
  assert.deepEqual(doc.scopes.map((r) => r.scope), ['openid', 'profile']);
  assert.equal(doc.scopes[0].name, kept.name);
  assert.deepEqual((await smDb.getDoc(CA, ALPHA)).scopes.map((r) => r.scope), ['openid', 'profile']);
});

await check('updateDoc of a missing document is rejected with 404', async () => {
  await frappeError(smDb.updateDoc(CA, 'doesnotexist', { provider_name: 'X' }), 404, 'DoesNotExistError');
});

await check('updateDoc by a plain user is refused and changes nothing', async () => {
  const e = await frappeError(plainDb.updateDoc(CA, BETA, { client_id: 'hijacked' }), 403, 'frappe.exceptions.PermissionError');
  assert.equal(e._error_message, `You need the 'write' permission on <strong>Connected App</strong> ${BETA} to perform this action.`);
  assert.equal((await smDb.getDoc(CA, BETA)).client_id, 'shared-id');
});

// --- lists ------------------------------------------------------------------------------------

await check('getDocList with no arguments: names only', async () => {
  const rows = await smDb.getDocList(CA);
  assert.equal(rows.length, 8);
  assert.deepEqual(Object.keys(rows[0]), ['name']);
});

await check('getDocList with fields and filters (every operator)', async () => {
  const ours = [ALPHA, BETA, GAMMA];
  const q = async (...filters) =>
    sortedNames(await smDb.getDocList(CA, { fields: ['name'], filters: [['name', 'in', ours], ...filters] }));
  assert.deepEqual(await q(['client_id', '=', 'shared-id']), [BETA, GAMMA].sort(), '=');
  assert.deepEqual(await q(['provider_name', '!=', 'Beta']), [ALPHA, GAMMA].sort(), '!=');
  assert.deepEqual(await q(['provider_name', 'like', '%lpha%']), [ALPHA], 'like');
  assert.deepEqual(await q(['provider_name', 'not like', '%a']), [ALPHA], 'not like');
  assert.deepEqual(await q(['provider_name', 'not in', ['Beta', 'Gamma']]), [ALPHA], 'not in');
  assert.deepEqual(await q(['provider_name', '>', 'Beta']), [GAMMA], '>');
  assert.deepEqual(await q(['provider_name', '>=', 'Beta']), [BETA, GAMMA].sort(), '>=');
  assert.deepEqual(await q(['provider_name', '<', 'Beta']), [ALPHA], '<');
  assert.deepEqual(await q(['provider_name', '<=', 'Beta']), [ALPHA, BETA].sort(), '<=');
  assert.deepEqual(await q(['client_secret', 'is', 'set']), [ALPHA], 'is set');
  assert.deepEqual(await q(['authorization_uri', 'is', 'not set']), [BETA, GAMMA].sort(), 'is not set');
  assert.deepEqual(await q(['OAuth Scope', 'scope', '=', 'profile']), [ALPHA], 'child table');
});

await check('getDocList with filters as a dict, with and without operators', async () => {
  const rows = await smDb.getDocList(CA, { fields: ['name'], filters: { client_id: 'shared-id' } });
  assert.deepEqual(sortedNames(rows), [BETA, GAMMA].sort());
  const like = await smDb.getDocList(CA, { fields: ['name'], filters: { provider_name: ['like', 'Alpha%'] } });
  assert.deepEqual(sortedNames(like), [ALPHA]);
});

await check('getDocList with orFilters', async () => {
  const rows = await smDb.getDocList(CA, {
    fields: ['name'],
    orFilters: [['provider_name', '=', 'Beta'], ['provider_name', '=', 'Gamma']],
  });
  assert.deepEqual(sortedNames(rows), [BETA, GAMMA].sort());
});

await check('getDocList ordering and paging (orderBy, limit, limit_start)', async () => {
  const page = (start) =>
    smDb.getDocList(CA, {
      fields: ['provider_name'],
      filters: [['client_id', '=', 'page-id']],
      orderBy: { field: 'provider_name', order: 'desc' },
      limit: 2,
      limit_start: start,
    });
  assert.deepEqual((await page(0)).map((r) => r.provider_name), ['Page 4', 'Page 3']);
  assert.deepEqual((await page(2)).map((r) => r.provider_name), ['Page 2', 'Page 1']);
  assert.deepEqual((await page(4)).map((r) => r.provider_name), ['Page 0']);
  assert.deepEqual(await page(6), []);
});

await check('getDocList with asDict false gives arrays', async () => {
  const rows = await smDb.getDocList(CA, {
    fields: ['name', 'provider_name'],
    filters: [['client_id', '=', 'shared-id']],
    orderBy: { field: 'provider_name' },
    asDict: false,
  });
  assert.deepEqual(rows, [[BETA, 'Beta'], [GAMMA, 'Gamma']]);
});

await check('getDocList with groupBy and aggregates', async () => {
  const rows = await smDb.getDocList(CA, {
    fields: ['client_id', 'count(name) as count'],
    groupBy: 'client_id',
    orderBy: { field: 'client_id', order: 'asc' },
  });
  assert.deepEqual(rows, [
    { client_id: 'alpha-id', count: 1 },
    { client_id: 'page-id', count: 5 },
    { client_id: 'shared-id', count: 2 },
  ]);
});

await check('getDocList with an unknown field is rejected (DataError)', async () => {
  await frappeError(
    smDb.getDocList(CA, { fields: ['name', 'nonexistent_field'] }),
    417,
    'frappe.exceptions.DataError: Field not permitted in query: nonexistent_field',
  );
});

await check('getCount, with and without filters', async () => {
  assert.equal(await smDb.getCount(CA), 8);
  assert.equal(await smDb.getCount(CA, [['client_id', '=', 'page-id']]), 5);
  assert.equal(await plainDb.getCount(CA, [['provider_name', 'like', 'Page%']]), 5);
});

await check('getLastDoc', async () => {
  const doc = await smDb.getLastDoc(CA, { filters: [['client_id', '=', 'shared-id']] });
  assert.equal(doc.name, GAMMA);
  assert.deepEqual(await smDb.getLastDoc(CA, { filters: [['client_id', '=', 'nobody']] }), {});
});

// --- values -----------------------------------------------------------------------------------

await check('getValue: one field, several fields, no match', async () => {
  assert.deepEqual(await smDb.getValue(CA, 'provider_name', [['name', '=', ALPHA]]), { message: { provider_name: 'Alpha Two' } });
  assert.deepEqual(await smDb.getValue(CA, ['provider_name', 'client_id'], [['name', '=', BETA]]), {
    message: { provider_name: 'Beta', client_id: 'shared-id' },
  });
  assert.deepEqual(await smDb.getValue(CA, 'client_secret', [['name', '=', ALPHA]]), { message: { client_secret: '************' } });
  assert.deepEqual(await smDb.getValue(CA, 'name', [['name', '=', 'doesnotexist']]), { message: {} });
});

await check('setValue of one field and of a field dict', async () => {
  const one = await smDb.setValue(CA, BETA, 'client_id', 'beta-id');
  assert.equal(one.message.name, BETA);
  assert.equal(one.message.client_id, 'beta-id');
  const many = await smDb.setValue(CA, BETA, { provider_name: 'Beta Two', userinfo_uri: 'https://beta.example/me' });
  assert.equal(many.message.provider_name, 'Beta Two');
  assert.equal(many.message.userinfo_uri, 'https://beta.example/me');
  assert.deepEqual(await smDb.getValue(CA, ['client_id', 'provider_name'], [['name', '=', BETA]]), {
    message: { client_id: 'beta-id', provider_name: 'Beta Two' },
  });
});

await check('setValue refusals: a plain user, a standard field, a missing document', async () => {
  await frappeError(plainDb.setValue(CA, BETA, 'client_id', 'hijacked'), 403, 'frappe.exceptions.PermissionError');
  await frappeError(smDb.setValue(CA, BETA, 'modified_by', 'x'), 417, 'frappe.exceptions.ValidationError: Cannot edit standard fields');
  await frappeError(smDb.setValue(CA, 'doesnotexist', 'client_id', 'x'), 404, 'DoesNotExistError');
  assert.deepEqual(await smDb.getValue(CA, 'client_id', [['name', '=', BETA]]), { message: { client_id: 'beta-id' } });
});

await check('getSingleValue on a non-single doctype', async () => {
  assert.deepEqual(await smDb.getSingleValue(CA, 'provider_name'), { message: '' });
  await frappeError(
    smDb.getSingleValue(CA, 'nope'),
    417,
    'frappe.exceptions.ValidationError: Field <strong>nope</strong> does not exist on <strong>Connected App</strong>',
  );
});

await check('renameDoc: Connected App does not allow renaming', async () => {
  const e = await frappeError(
    smDb.renameDoc(CA, GAMMA, 'gamma-renamed'),
    417,
    'frappe.exceptions.ValidationError: Connected App not allowed to be renamed',
  );
  assert.deepEqual(serverMessages(e), ['Connected App not allowed to be renamed']);
  assert.equal((await smDb.getDoc(CA, GAMMA)).name, GAMMA);
  await frappeError(
    plainDb.renameDoc(CA, GAMMA, 'by-plain'),
    417,
    `frappe.exceptions.ValidationError: You need write permission on Connected App ${GAMMA} to rename`,
  );
  await frappeError(smDb.renameDoc(CA, 'doesnotexist', 'x'), 404, 'DoesNotExistError');
});

// --- method calls -----------------------------------------------------------------------------

await check('call.get and call.post of frappe.client methods', async () => {
  assert.deepEqual(await sm.call().get('frappe.auth.get_logged_user'), { message: SM_EMAIL });
  const list = await sm.call().get('frappe.client.get_list', {
    doctype: CA,
    fields: ['name', 'provider_name'],
    filters: { client_id: 'beta-id' },
  });
  assert.deepEqual(list, { message: [{ name: BETA, provider_name: 'Beta Two' }] });
  assert.deepEqual(await sm.call().post('frappe.client.get_count', { doctype: CA, filters: { client_id: 'page-id' } }), { message: 5 });
  assert.deepEqual(await plain.call().get(HAS_TOKEN, { connected_app: ALPHA }), { message: false });
});

await check('call.put frappe.client.set_value', async () => {
  const res = await sm.call().put('frappe.client.set_value', { doctype: CA, name: GAMMA, fieldname: 'client_id', value: 'gamma-id' });
  assert.equal(res.message.client_id, 'gamma-id');
});

await check('call.post frappe.client.bulk_update', async () => {
  const res = await sm.call().post('frappe.client.bulk_update', {
    docs: JSON.stringify([
      { doctype: CA, docname: GAMMA, revocation_uri: 'https://gamma.example/revoke' },
      { doctype: CA, docname: 'doesnotexist', client_id: 'x' },
    ]),
  });
  assert.equal(res.message.failed_docs.length, 1);
  assert.deepEqual(res.message.failed_docs[0].doc, { doctype: CA, docname: 'doesnotexist', client_id: 'x' });
  const last = res.message.failed_docs[0].exc.trim().split('\n').pop();
  assert.equal(last, 'frappe.exceptions.DoesNotExistError: Connected App doesnotexist not found');
  assert.deepEqual(await smDb.getValue(CA, 'revocation_uri', [['name', '=', GAMMA]]), {
    message: { revocation_uri: 'https://gamma.example/revoke' },
  });
});

await check('call.post run_doc_method starts the flow (plain user)', async () => {
  const res = await plain.call().post('run_doc_method', { dt: CA, dn: ALPHA, method: 'initiate_web_application_flow' });
  const prefix = `https://alpha.example/authorize?response_type=code&client_id=alpha-id&redirect_uri=${encodeURIComponent(URL + CALLBACK + ALPHA)}&scope=openid+profile&state=`;
  assert.ok(res.message.startsWith(prefix), `${res.message} does not start with ${prefix}`);
  assert.equal(res.docs[0].name, ALPHA);
});

await check('call.get of a method that does not exist is rejected', async () => {
  await frappeError(
    sm.call().get('frappe.client.nonexistent'),
    417,
    "frappe.exceptions.ValidationError: Failed to get method for command frappe.client.nonexistent with module 'frappe.client' has no attribute 'nonexistent'",
  );
});

// --- Token Cache ------------------------------------------------------------------------------

const PLAIN_TC = `${ALPHA}-${PLAIN_EMAIL}`;
const OTHER_TC = `${GAMMA}-${OTHER_EMAIL}`;

await check('Token Cache: createDoc with scopes, setValue, getValue (System Manager)', async () => {
  const doc = await smDb.createDoc(TC, {
    connected_app: GAMMA,
    user: OTHER_EMAIL,
    access_token: 'at-1',
    expires_in: 3600,
    scopes: [{ scope: 'read' }],
  });
  assert.equal(doc.name, OTHER_TC);
  assert.equal(doc.provider_name, 'Gamma');
  assert.equal(doc.access_token, '****');
  assert.deepEqual(doc.scopes.map((r) => [r.scope, r.parenttype]), [['read', TC]]);
  assert.equal((await smDb.setValue(TC, OTHER_TC, 'expires_in', 7200)).message.expires_in, 7200);
  assert.deepEqual(await smDb.getValue(TC, ['expires_in', 'access_token'], [['name', '=', OTHER_TC]]), {
    message: { expires_in: 7200, access_token: '****' },
  });
});

await check('Token Cache: lists, grouping and counts (System Manager)', async () => {
  const rows = await smDb.getDocList(TC, { fields: ['name', 'user'], filters: [['expires_in', '>=', 7200]] });
  assert.deepEqual(rows, [{ name: OTHER_TC, user: OTHER_EMAIL }]);
  const groups = await smDb.getDocList(TC, {
    fields: ['connected_app', 'count(name) as n', 'max(expires_in) as longest'],
    groupBy: 'connected_app',
    orderBy: { field: 'connected_app' },
  });
  assert.deepEqual(
    groups,
    [{ connected_app: ALPHA, n: 1, longest: 0 }, { connected_app: GAMMA, n: 1, longest: 7200 }].sort((a, b) =>
      a.connected_app < b.connected_app ? -1 : 1,
    ),
  );
  assert.equal(await smDb.getCount(TC), 2);
});

await check('Token Cache: a plain user sees only its own', async () => {
  assert.deepEqual(await plainDb.getDocList(TC, { fields: ['name', 'owner'] }), [{ name: PLAIN_TC, owner: PLAIN_EMAIL }]);
  const own = await plainDb.getDoc(TC, PLAIN_TC);
  assert.equal(own.user, PLAIN_EMAIL);
  await frappeError(plainDb.getDoc(TC, OTHER_TC), 403, 'frappe.exceptions.PermissionError');
});

await check('Token Cache: refused writes of plain users', async () => {
  await frappeError(plainDb.updateDoc(TC, PLAIN_TC, { expires_in: 1 }), 403, 'frappe.exceptions.PermissionError');
  await frappeError(
    other.db().deleteDoc(TC, PLAIN_TC),
    403,
    `frappe.exceptions.PermissionError: User not allowed to delete Token Cache: ${PLAIN_TC}`,
  );
  await frappeError(
    plain.call().delete('frappe.client.delete', { doctype: TC, name: OTHER_TC }),
    403,
    `frappe.exceptions.PermissionError: User not allowed to delete Token Cache: ${OTHER_TC}`,
  );
  assert.equal(await smDb.getCount(TC), 2);
});

await check('Token Cache: renameDoc is refused', async () => {
  await frappeError(smDb.renameDoc(TC, OTHER_TC, 'renamed'), 417, 'frappe.exceptions.ValidationError: Token Cache not allowed to be renamed');
});

await check('deleteDoc of an app a Token Cache links to is rejected (LinkExistsError)', async () => {
  await frappeError(
    smDb.deleteDoc(CA, GAMMA),
    417,
    `frappe.exceptions.LinkExistsError: Cannot delete or cancel because Connected App <a href="/app/Form/Connected App/${GAMMA}">${GAMMA}</a> is linked with Token Cache <a href="/app/Form/Token Cache/${OTHER_TC}">${OTHER_TC}</a> `,
  );
  assert.equal((await smDb.getDoc(CA, GAMMA)).name, GAMMA);
});

await check('Token Cache: a plain user deletes its own (password session)', async () => {
  const app = s.plainSession;
  assert.ok(app, 'no plain session');
  assert.deepEqual(await app.db().deleteDoc(TC, PLAIN_TC), { data: 'ok' });
  assert.equal(await smDb.getCount(TC, [['name', '=', PLAIN_TC]]), 0);
});

await check('Token Cache: call.delete frappe.client.delete (HTTP DELETE)', async () => {
  assert.deepEqual(await sm.call().delete('frappe.client.delete', { doctype: TC, name: OTHER_TC }), {});
  await frappeError(smDb.getDoc(TC, OTHER_TC), 404, 'DoesNotExistError');
});

// --- delete -----------------------------------------------------------------------------------

await check('deleteDoc by a plain user is refused and deletes nothing', async () => {
  await frappeError(plainDb.deleteDoc(CA, BETA), 403, `frappe.exceptions.PermissionError: User not allowed to delete Connected App: ${BETA}`);
  assert.equal((await smDb.getDoc(CA, BETA)).name, BETA);
});

await check('deleteDoc, then again', async () => {
  assert.deepEqual(await smDb.deleteDoc(CA, GAMMA), { data: 'ok' });
  await frappeError(smDb.getDoc(CA, GAMMA), 404, 'DoesNotExistError');
  await frappeError(smDb.deleteDoc(CA, GAMMA), 404, 'DoesNotExistError');
});

await check('call.delete frappe.client.delete of an app (HTTP DELETE)', async () => {
  assert.deepEqual(await sm.call().delete('frappe.client.delete', { doctype: CA, name: s.page[0] }), {});
  assert.equal(await smDb.getCount(CA, [['name', '=', s.page[0]]]), 0);
});

await check('deleteDoc through the Administrator password session, then logout', async () => {
  const app = s.admin;
  assert.ok(app, 'no Administrator session');
  assert.deepEqual(await app.db().deleteDoc(CA, s.page[1]), { data: 'ok' });
  await app.auth().logout();
  await frappeError(app.db().getDocList(CA), 403, 'frappe.exceptions.PermissionError');
});

console.log(`summary: ${passed} ok, ${failed} failing`);
process.exitCode = failed ? 1 : 0;
