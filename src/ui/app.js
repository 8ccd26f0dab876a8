// connected-apps web pages: fills the page shell the service sends by calling its own Frappe
// REST API with the session cookie. No framework, no build step. Text from the server is only
// ever put into the page as text (never as HTML).
'use strict';

(() => {
  const body = document.body;
  const content = document.getElementById('content');
  const messages = document.getElementById('messages');
  const user = body.dataset.user || 'Guest';
  const systemManager = body.dataset.systemManager === '1';
  const HOME = '/app/connected-app';
  const enc = encodeURIComponent;

  // --- small helpers ---------------------------------------------------------------------

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  let uid = 0;
  function field(label, input, { required = false, hint = null } = {}) {
    if (!input.id) { uid += 1; input.id = `f${uid}`; }
    if (required) input.setAttribute('aria-required', 'true');
    let hintEl = null;
    if (hint) {
      hintEl = h('p', { class: 'hint', id: `${input.id}-hint` }, hint);
      input.setAttribute('aria-describedby', hintEl.id);
    }
    return h('div', { class: 'field' },
      h('label', { for: input.id, class: required ? 'req' : null }, label), input, hintEl);
  }

  // Frappe messages may hold HTML (links to documents): keep the text only.
  function plain(html) {
    return new DOMParser().parseFromString(String(html), 'text/html').body.textContent.trim();
  }

  // Frappe's error body in plain words: `_server_messages`, the top-level message, `exception`.
  function errorText(json, status) {
    const out = [];
    if (json && typeof json._server_messages === 'string') {
      try {
        for (const m of JSON.parse(json._server_messages)) {
          let o;
          try { o = JSON.parse(m); } catch { o = { message: m }; }
          const text = plain(o && typeof o === 'object' ? o.message || '' : o);
          if (text) out.push(text);
        }
      } catch { /* not a list: fall through */ }
    }
    if (!out.length && json && typeof json.message === 'string') out.push(plain(json.message));
    if (!out.length && json && typeof json._error_message === 'string') out.push(plain(json._error_message));
    // `frappe.exceptions.ValidationError: the reason` -> the reason (a bare class name says nothing)
    const exc = json && typeof json.exception === 'string' ? /^[\w.]+:\s*(.+)$/s.exec(json.exception) : null;
    if (!out.length && exc) out.push(plain(exc[1]));
    if (!out.length) {
      if (status === 401) out.push('Your session has ended. Please log in again.');
      else if (status === 403) out.push('You are not permitted to do this.');
      else if (status === 404) out.push('This document no longer exists.');
      else out.push(`The request failed (HTTP ${status}). Please try again.`);
    }
    return out.join(' ');
  }

  // The session's CSRF token (the page carries it; Frappe's desk sends it the same way).
  const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || '';

  async function api(method, path, data) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (csrfToken) opts.headers['X-Frappe-CSRF-Token'] = csrfToken;
    if (data !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(data);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch {
      throw new Error('The service could not be reached. Check the connection and try again.');
    }
    let json = null;
    try { json = await resp.json(); } catch { /* empty or not JSON */ }
    if (!resp.ok) {
      const err = new Error(errorText(json, resp.status));
      err.status = resp.status;
      throw err;
    }
    return json || {};
  }

  function say(kind, text) {
    messages.replaceChildren(h('p', { class: `msg ${kind}` }, text));
  }
  const showError = (e) => say('error', e instanceof Error ? e.message : String(e));
  const showInfo = (text) => say('info', text);
  const clearMessages = () => messages.replaceChildren();

  // Runs an action from a button: the button is busy meanwhile, errors are shown in the page.
  async function act(button, fn) {
    clearMessages();
    if (button) button.disabled = true;
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const t = h('textarea', { readonly: true, class: 'sr-only' });
      t.value = text;
      document.body.append(t);
      t.select();
      document.execCommand('copy');
      t.remove();
    }
    const before = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = before; }, 1500);
  }

  function copyButton(text, what) {
    const b = h('button', { type: 'button', 'aria-label': `Copy ${what}` }, 'Copy');
    b.addEventListener('click', () => copy(text, b));
    return b;
  }

  // `2026-11-28 10:00:00.123456` plus seconds, in the same (site) time.
  function addSeconds(ts, seconds) {
    const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)/.exec(ts || '');
    if (!m) return null;
    const d = new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + seconds * 1000);
    return d.toISOString().slice(0, 16).replace('T', ' ');
  }

  const appPath = (name) => `${HOME}/${enc(name)}`;

  // --- pages -------------------------------------------------------------------------------

  function loginPage() {
    const usr = h('input', { name: 'usr', type: 'text', autocomplete: 'username', required: true });
    const pwd = h('input', { name: 'pwd', type: 'password', autocomplete: 'current-password', required: true });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
    const form = h('form', { class: 'card narrow', novalidate: true },
      field('Email or user name', usr, { required: true }),
      field('Password', pwd, { required: true }),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!usr.value.trim() || !pwd.value) {
        say('error', 'Enter your email (or user name) and your password.');
        (usr.value.trim() ? pwd : usr).focus();
        return;
      }
      act(submit, async () => {
        await api('POST', '/api/method/login', { usr: usr.value.trim(), pwd: pwd.value });
        location.assign(safeNext(body.dataset.next));
      });
    });
    content.replaceChildren(form);
    usr.focus();
  }

  // Only ever this service's own pages (the server checked it too).
  function safeNext(next) {
    try {
      const u = new URL(next || HOME, location.origin);
      if (u.origin === location.origin && !/^\/[/\\]/.test(next)) return u.href;
    } catch { /* fall through */ }
    return HOME;
  }

  async function appListPage() {
    const params = new URLSearchParams(location.search);
    const filter = h('input', { type: 'search', value: params.get('provider_name') || '', autocomplete: 'off' });
    const toolbar = h('div', { class: 'toolbar' },
      field('Filter by provider', filter),
      systemManager ? h('a', { class: 'button primary', href: `${HOME}/new` }, 'New') : null);
    const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
    content.replaceChildren(toolbar, list);

    async function load() {
      const q = filter.value.trim();
      const url = new URLSearchParams({
        fields: JSON.stringify(['name', 'provider_name', 'client_id', 'redirect_uri']),
        order_by: 'provider_name asc',
        limit_page_length: '0',
      });
      if (q) url.set('filters', JSON.stringify([['provider_name', 'like', `%${q}%`]]));
      const rows = (await api('GET', `/api/resource/Connected%20App?${url}`)).data || [];
      if (!rows.length) {
        list.replaceChildren(h('p', {}, q ? `No Connected App has a provider matching “${q}”.`
          : `No Connected Apps yet.${systemManager ? ' Create one with “New”.' : ''}`));
        return;
      }
      list.replaceChildren(h('table', { class: 'list' },
        h('caption', { class: 'sr-only' }, 'Connected Apps'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Provider'), h('th', { scope: 'col' }, 'Client Id'),
          h('th', { scope: 'col' }, 'Redirect URI'))),
        h('tbody', {}, rows.map((r) => h('tr', {},
          h('td', { 'data-label': 'Provider' }, h('a', { href: appPath(r.name) }, r.provider_name || r.name)),
          h('td', { 'data-label': 'Client Id' }, r.client_id || h('span', { class: 'muted' }, 'not set')),
          h('td', { 'data-label': 'Redirect URI' },
            h('code', {}, r.redirect_uri || ''), ' ',
            r.redirect_uri ? copyButton(r.redirect_uri, `the redirect URI of ${r.provider_name || r.name}`) : null))))));
    }

    let timer = null;
    filter.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const u = new URL(location.href);
        if (filter.value.trim()) u.searchParams.set('provider_name', filter.value.trim());
        else u.searchParams.delete('provider_name');
        history.replaceState(null, '', u);
        load().catch(showError);
      }, 250);
    });
    await load();
  }

  // The Connected App form, grouped as Frappe's form groups it.
  const LAYOUT = [
    { columns: [[['provider_name', 'Provider Name', { required: true }]],
      [['openid_configuration', 'OpenID Configuration', { discovery: true }]]] },
    { title: 'Client Credentials', columns: [
      [['client_id', 'Client Id'], ['redirect_uri', 'Redirect URI', { readonly: true }]],
      [['client_secret', 'Client Secret', { password: true }]]] },
    { title: 'Scopes', table: 'scopes', item: 'scope', cols: [['scope', 'Scope']] },
    { title: 'Endpoints', columns: [
      [['authorization_uri', 'Authorization URI', { textarea: true }], ['token_uri', 'Token URI'],
        ['revocation_uri', 'Revocation URI']],
      [['userinfo_uri', 'Userinfo URI'], ['introspection_uri', 'Introspection URI']]] },
    { title: 'Extra Parameters', table: 'query_parameters', item: 'parameter', cols: [['key', 'Key'], ['value', 'Value']] },
  ];
  const EDITABLE = ['provider_name', 'openid_configuration', 'client_id', 'client_secret',
    'authorization_uri', 'token_uri', 'revocation_uri', 'userinfo_uri', 'introspection_uri'];

  // "Start from a provider preset" on the New Connected App page: a choice of the service's
  // provider presets (connected_apps.provider_presets); "Fill the form" hands `apply` the
  // normal Connected App fields of the chosen one. Returns the elements to show (none for
  // people who cannot create apps).
  const presetChoice = { list: null, id: '', values: {} };
  function presetChooser(canCreate, apply) {
    if (!canCreate) return [];
    const select = h('select', { id: 'preset' }, h('option', { value: '' }, 'None: fill the form by hand'));
    const details = h('div', { id: 'preset-details' });
    const fill = h('button', { type: 'button', id: 'preset-fill' }, 'Fill the form');
    const card = h('section', { class: 'card', 'aria-labelledby': 'preset-title' },
      h('h2', { id: 'preset-title' }, 'Start from a provider preset'),
      field('Provider preset', select, { hint: 'Fills the endpoints, scopes and parameters the provider documents. You add the client id and secret.' }),
      details, h('div', { class: 'actions' }, fill));
    const chosen = () => (presetChoice.list || []).find((p) => p.id === presetChoice.id) || null;
    function show() {
      const p = chosen();
      fill.disabled = !p;
      if (!p) { details.replaceChildren(); return; }
      const params = p.parameters.map((x) => {
        const el = h('input', { type: 'text', autocomplete: 'off', value: presetChoice.values[x.name] ?? x.default ?? '' });
        el.id = `preset-param-${x.name}`;
        el.addEventListener('input', () => { presetChoice.values[x.name] = el.value; });
        return field(x.label, el, { required: !x.default, hint: x.description });
      });
      details.replaceChildren(...params,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Client authentication'), h('dd', {}, h('code', {}, p.client_auth)),
          h('dt', {}, 'Documentation'), h('dd', {}, h('a', { href: p.documentation, rel: 'noopener noreferrer', target: '_blank' }, p.documentation))),
        h('p', { class: 'muted' }, 'Known quirks:'),
        h('ul', { class: 'muted' }, p.quirks.map((q) => h('li', {}, q))));
    }
    select.addEventListener('change', () => { presetChoice.id = select.value; presetChoice.values = {}; show(); });
    fill.addEventListener('click', () => act(fill, async () => {
      const p = chosen();
      const q = new URLSearchParams({ preset: p.id });
      for (const x of p.parameters) {
        const v = (presetChoice.values[x.name] ?? x.default ?? '').trim();
        if (!v) {
          document.getElementById(`preset-param-${x.name}`)?.focus();
          throw new Error(`Enter the ${x.label} first.`);
        }
        q.set(x.name, v);
      }
      const r = await api('GET', `/api/method/connected_apps.provider_presets?${q}`);
      const form = { openid_configuration: '', authorization_uri: '', token_uri: '', revocation_uri: '',
        userinfo_uri: '', introspection_uri: '', ...r.message.connected_app };
      apply(form);
      showInfo(`The form was filled from the ${p.provider_name} preset. Add the client id and secret, then save.`);
    }));
    const fillOptions = () => {
      select.replaceChildren(select.firstChild,
        ...presetChoice.list.map((p) => h('option', { value: p.id }, p.provider_name)));
      select.value = presetChoice.id;
      show();
    };
    if (presetChoice.list) fillOptions();
    else {
      fill.disabled = true;
      api('GET', '/api/method/connected_apps.provider_presets')
        .then((r) => { presetChoice.list = r.message || []; fillOptions(); })
        .catch(showError);
    }
    return [card];
  }

  async function appFormPage() {
    let name = body.dataset.name || null;
    let doc = { scopes: [], query_parameters: [] };
    let savedSecret = null;
    let dirty = false;
    const canEdit = systemManager;
    const title = document.getElementById('title');

    if (name) {
      doc = (await api('GET', `/api/resource/Connected%20App/${enc(name)}`)).data;
      savedSecret = doc.client_secret ?? null;
    }
    render();
    if (name) loadConnection();

    function setTitle() {
      const t = name ? (doc.provider_name || name) : 'New Connected App';
      title.textContent = t;
      document.title = `${t} · Connected Apps`;
    }

    function input(key, label, opts = {}) {
      let el;
      if (opts.textarea) el = h('textarea', { rows: 3 });
      else el = h('input', { type: opts.password ? 'password' : 'text', autocomplete: opts.password ? 'new-password' : 'off' });
      el.id = `field-${key}`;
      el.value = doc[key] ?? '';
      if (opts.readonly || !canEdit) el.readOnly = true;
      el.addEventListener('input', () => {
        doc[key] = el.value;
        dirty = true;
        el.removeAttribute('aria-invalid');
      });
      const hint = {
        openid_configuration: 'The discovery URL, e.g. https://accounts.google.com/.well-known/openid-configuration. “Get OpenID Configuration” fills the endpoints from it.',
        redirect_uri: name ? 'Register this URI at the provider.' : 'Known once the app is saved.',
        client_secret: savedSecret ? 'Saved. Type a new one to replace it.' : null,
      }[key];
      const f = field(label, el, { required: opts.required, hint });
      let button = null;
      if (opts.discovery && canEdit) {
        button = h('button', { type: 'button', id: 'get-openid' }, 'Get OpenID Configuration');
        button.addEventListener('click', () => act(button, discover));
      } else if (key === 'redirect_uri' && doc.redirect_uri) {
        button = copyButton(doc.redirect_uri, 'the redirect URI');
      }
      if (button) {
        const row = h('div', { class: 'inline' });
        f.replaceChild(row, el);
        row.append(el, button);
      }
      return f;
    }

    function table(key, item, cols) {
      const rows = doc[key] || (doc[key] = []);
      const tbody = h('tbody');
      const wrap = h('div');
      function draw() {
        tbody.replaceChildren(...rows.map((row, i) => h('tr', {},
          cols.map(([f, label]) => {
            const el = h('input', { type: 'text', 'aria-label': `${label} ${i + 1}`, value: row[f] ?? '', autocomplete: 'off' });
            if (!canEdit) el.readOnly = true;
            el.addEventListener('input', () => { row[f] = el.value; dirty = true; });
            return h('td', {}, el);
          }),
          canEdit ? h('td', {}, h('button', {
            type: 'button',
            'aria-label': `Remove ${item} ${i + 1}`,
            onclick: () => { rows.splice(i, 1); dirty = true; draw(); },
          }, 'Remove')) : null)));
        wrap.replaceChildren(rows.length
          ? h('table', { class: 'rows' },
            h('thead', {}, h('tr', {}, cols.map(([, label]) => h('th', { scope: 'col' }, label)),
              canEdit ? h('th', {}, h('span', { class: 'sr-only' }, 'Actions')) : null)),
            tbody)
          : h('p', { class: 'muted' }, 'None.'));
      }
      draw();
      const add = canEdit ? h('button', {
        type: 'button',
        onclick: () => {
          rows.push(Object.fromEntries(cols.map(([f]) => [f, ''])));
          dirty = true;
          draw();
          tbody.lastElementChild?.querySelector('input')?.focus();
        },
      }, `Add ${item}`) : null;
      return [wrap, h('div', { class: 'actions' }, add)];
    }

    function render() {
      setTitle();
      const sections = LAYOUT.map((s) => {
        const head = s.title ? h('h2', {}, s.title) : null;
        const inner = s.table ? table(s.table, s.item, s.cols)
          : h('div', { class: 'columns' }, s.columns.map((col) => h('div', {}, col.map(([k, l, o]) => input(k, l, o)))));
        return h('section', { class: 'card', 'aria-label': s.title || 'Provider' }, head, inner);
      });
      const save = canEdit ? h('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save') : null;
      const form = h('form', { novalidate: true, id: 'app-form' }, sections,
        save ? h('div', { class: 'actions' }, save) : null);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        act(save, async () => { if (await saveDoc()) showInfo('Saved.'); });
      });
      const conn = h('section', { class: 'card', id: 'connection', 'aria-labelledby': 'connection-title' },
        h('h2', { id: 'connection-title' }, 'Your connection'),
        h('div', { id: 'connection-body' }, name ? h('p', { class: 'muted' }, 'Loading…')
          : h('p', { class: 'muted' }, 'Save the app first, then connect your account.')));
      // Once saved, the connection comes first: it is what a person comes back to see.
      if (name) content.replaceChildren(conn, form);
      else content.replaceChildren(...presetChooser(canEdit, (f) => { Object.assign(doc, f); dirty = true; render(); }), form, conn);
    }

    // Saves when needed; returns false when the form is not valid.
    async function saveDoc() {
      if (!canEdit) return true;
      const provider = (doc.provider_name || '').trim();
      if (!provider) {
        const el = document.getElementById('field-provider_name');
        el.setAttribute('aria-invalid', 'true');
        el.focus();
        say('error', 'Provider Name is required.');
        return false;
      }
      const out = {};
      for (const k of EDITABLE) if (k !== 'client_secret') out[k] = doc[k] ?? '';
      if ((doc.client_secret ?? null) !== savedSecret && doc.client_secret) out.client_secret = doc.client_secret;
      out.scopes = (doc.scopes || []).filter((r) => (r.scope || '').trim()).map((r) => ({ scope: r.scope.trim() }));
      out.query_parameters = (doc.query_parameters || []).filter((r) => (r.key || '').trim() || (r.value || '').trim())
        .map((r) => ({ key: (r.key || '').trim(), value: r.value || '' }));
      const saved = name
        ? await api('PUT', `/api/resource/Connected%20App/${enc(name)}`, out)
        : await api('POST', '/api/resource/Connected%20App', out);
      const wasNew = !name;
      doc = saved.data;
      name = doc.name;
      savedSecret = doc.client_secret ?? null;
      dirty = false;
      if (wasNew) {
        history.replaceState(null, '', appPath(name));
        body.dataset.name = name;
      }
      render();
      loadConnection();
      return true;
    }

    async function discover() {
      if (!(doc.openid_configuration || '').trim()) {
        const el = document.getElementById('field-openid_configuration');
        el.setAttribute('aria-invalid', 'true');
        el.focus();
        say('error', 'Enter the OpenID Configuration URL first.');
        return;
      }
      if (!name || dirty) { if (!(await saveDoc())) return; }
      const r = await api('POST', '/api/method/run_doc_method',
        { dt: 'Connected App', dn: name, method: 'get_openid_configuration' });
      doc = r.message;
      savedSecret = doc.client_secret ?? null;
      render();
      loadConnection();
      showInfo('The endpoints were filled from the OpenID configuration.');
      document.getElementById('get-openid')?.focus();
    }

    async function connect(button) {
      await act(button, async () => {
        if (dirty && !(await saveDoc())) return;
        const r = await api('POST', '/api/method/run_doc_method', {
          dt: 'Connected App', dn: name, method: 'initiate_web_application_flow',
          args: JSON.stringify({ success_uri: appPath(name) }),
        });
        if (typeof r.message !== 'string' || !r.message) throw new Error('The provider address is missing.');
        location.assign(r.message);
      });
    }

    async function loadConnection() {
      const box = document.getElementById('connection-body');
      if (!box || !name) return;
      // The connection is found by its app and user (the row's columns), never by composing
      // `<app>-<user>`: another user's row can have that name (app `a`, user `mary-jane@…`
      // against app `a-mary`, user `jane@…`).
      let tcName = null;
      let tc = null;
      let connected = false;
      const mine = new URLSearchParams({
        fields: JSON.stringify(['name']),
        filters: JSON.stringify([['connected_app', '=', name], ['user', '=', user]]),
        limit_page_length: '1',
      });
      try {
        const [t, has] = await Promise.all([
          api('GET', `/api/resource/Token%20Cache?${mine}`).then((r) => {
            const row = (r.data || [])[0];
            if (!row) return null;
            tcName = row.name;
            return api('GET', `/api/resource/Token%20Cache/${enc(tcName)}`).then((x) => x.data);
          }).catch((e) => {
            if (e.status === 404 || e.status === 403) return null;
            throw e;
          }),
          api('POST', '/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token',
            { connected_app: name }),
        ]);
        tc = t;
        connected = has.message === true;
      } catch (e) {
        box.replaceChildren(h('p', { class: 'msg error' }, e.message));
        return;
      }
      const provider = doc.provider_name || name;
      const hadToken = tc && tc.access_token;
      const state = connected ? h('span', { class: 'badge ok', id: 'connection-state' }, 'Connected')
        : h('span', { class: hadToken ? 'badge warn' : 'badge off', id: 'connection-state' },
          hadToken ? 'Needs reconnecting' : 'Not connected');
      const facts = h('dl', { class: 'facts' }, h('dt', {}, 'State'), h('dd', {}, state));
      if (connected && tc) {
        const scopes = (tc.scopes || []).map((s) => s.scope).filter(Boolean);
        facts.append(h('dt', {}, 'Scopes'), h('dd', {}, scopes.length ? scopes.join(', ') : 'none granted'));
        const expires = tc.expires_in ? addSeconds(tc.modified, tc.expires_in) : null;
        facts.append(h('dt', {}, 'Token expires'), h('dd', {}, expires
          ? `${expires} (site time); it is renewed automatically when it can be`
          : 'not stated by the provider'));
      }
      const actions = h('div', { class: 'actions' });
      const connectBtn = h('button', { type: 'button', class: 'primary', id: 'connect' },
        connected || hadToken ? 'Reconnect' : `Connect to ${provider}`);
      connectBtn.addEventListener('click', () => connect(connectBtn));
      actions.append(connectBtn);
      if (tc) {
        const disc = h('button', { type: 'button', class: 'danger', id: 'disconnect' }, 'Disconnect');
        disc.addEventListener('click', () => {
          if (!window.confirm(`Disconnect your ${provider} account? The saved token is deleted and revoked at the provider.`)) return;
          act(disc, async () => {
            await api('DELETE', `/api/resource/Token%20Cache/${enc(tcName)}`);
            await loadConnection();
            showInfo(`Disconnected from ${provider}.`);
            document.getElementById('connect')?.focus();
          });
        });
        actions.append(disc);
      }
      box.replaceChildren(facts, actions);
    }
  }

  async function tokenCachePage() {
    const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
    content.replaceChildren(list);
    async function load() {
      const q = new URLSearchParams({
        fields: JSON.stringify(['name', 'user', 'connected_app', 'provider_name', 'expires_in', 'modified']),
        order_by: 'modified desc',
        limit_page_length: '0',
      });
      const rows = (await api('GET', `/api/resource/Token%20Cache?${q}`)).data || [];
      if (!rows.length) {
        list.replaceChildren(h('p', {}, 'Nobody is connected yet.'));
        return;
      }
      const states = await Promise.all(rows.map((r) => (!r.user ? Promise.resolve('App token')
        : api('POST', '/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token',
          { connected_app: r.connected_app, connected_user: r.user })
          .then((x) => (x.message ? 'Connected' : 'Not connected'))
          .catch(() => 'Unknown'))));
      list.replaceChildren(h('table', { class: 'list' },
        h('caption', { class: 'sr-only' }, 'Connections'),
        h('thead', {}, h('tr', {}, ['User', 'Connected App', 'Expires', 'State', 'Actions']
          .map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows.map((r, i) => {
          const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete the connection of ${r.user || 'the app'} to ${r.provider_name || r.connected_app}` }, 'Delete');
          del.addEventListener('click', () => {
            if (!window.confirm(`Delete the connection of ${r.user || 'the app itself'} to ${r.provider_name || r.connected_app}? Its tokens are revoked at the provider.`)) return;
            act(del, async () => {
              await api('DELETE', `/api/resource/Token%20Cache/${enc(r.name)}`);
              await load();
              showInfo('Deleted.');
            });
          });
          const expires = r.expires_in ? addSeconds(r.modified, r.expires_in) : null;
          return h('tr', {},
            h('td', { 'data-label': 'User' }, r.user || h('span', { class: 'muted' }, 'the app itself')),
            h('td', { 'data-label': 'Connected App' }, h('a', { href: appPath(r.connected_app) }, r.provider_name || r.connected_app)),
            h('td', { 'data-label': 'Expires' }, expires || '—'),
            h('td', { 'data-label': 'State' }, states[i]),
            h('td', {}, del));
        }))));
    }
    await load();
  }

  function callbackErrorPage() {
    say('error', body.dataset.error || 'The connection could not be completed.');
    content.replaceChildren(h('p', {}, body.dataset.name
      ? h('a', { href: appPath(body.dataset.name) }, 'Back to the app page') : h('a', { href: HOME }, 'Back')));
  }

  function forbiddenPage() {
    say('error', 'Only a System Manager can see every connection.');
    content.replaceChildren(h('p', {}, h('a', { href: HOME }, 'Back to the Connected Apps')));
  }

  // --- start ------------------------------------------------------------------------------

  const logout = document.getElementById('logout');
  if (logout) {
    logout.addEventListener('click', () => act(logout, async () => {
      await api('POST', '/api/method/logout');
      location.assign('/login');
    }));
  }

  const pages = {
    login: loginPage,
    'app-list': appListPage,
    'app-form': appFormPage,
    'token-cache': tokenCachePage,
    'callback-error': callbackErrorPage,
    forbidden: forbiddenPage,
  };
  content.replaceChildren();
  Promise.resolve()
    .then(() => (pages[body.dataset.page] || (() => {}))())
    .catch(showError);
})();
