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

  // Frappe's error body: its messages as sent (they may hold links to documents), from
  // `_server_messages`, the top-level message or `exception`.
  function errorParts(json, status) {
    const out = [];
    if (json && typeof json._server_messages === 'string') {
      try {
        for (const m of JSON.parse(json._server_messages)) {
          let o;
          try { o = JSON.parse(m); } catch { o = { message: m }; }
          const raw = String(o && typeof o === 'object' ? o.message || '' : o);
          if (plain(raw)) out.push(raw);
        }
      } catch { /* not a list: fall through */ }
    }
    if (!out.length && json && typeof json.message === 'string') out.push(json.message);
    if (!out.length && json && typeof json._error_message === 'string') out.push(json._error_message);
    // `frappe.exceptions.ValidationError: the reason` -> the reason (a bare class name says nothing)
    const exc = json && typeof json.exception === 'string' ? /^[\w.]+:\s*(.+)$/s.exec(json.exception) : null;
    if (!out.length && exc) out.push(exc[1]);
    if (!out.length) {
      if (status === 401) out.push('Your session has ended. Please log in again.');
      else if (status === 403) out.push('You are not permitted to do this.');
      else if (status === 404) out.push('This document no longer exists.');
      else out.push(`The request failed (HTTP ${status}). Please try again.`);
    }
    return out;
  }

  // A message from the server as page content: its text, and its links when they lead to
  // this service's own pages (`/app/…`, as Frappe's `/app/Form/Token Cache/<name>`).
  function rich(html) {
    const doc = new DOMParser().parseFromString(String(html), 'text/html');
    const out = [];
    (function walk(node) {
      for (const n of node.childNodes) {
        if (n.nodeType === Node.TEXT_NODE) out.push(n.textContent);
        else if (n.nodeName === 'A' && /^\/app\//.test(n.getAttribute('href') || '')) {
          out.push(h('a', { href: n.getAttribute('href') }, n.textContent));
        } else if (n.nodeType === Node.ELEMENT_NODE) walk(n);
      }
    }(doc.body));
    return out;
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
      const parts = errorParts(json, resp.status);
      const err = new Error(parts.map(plain).join(' '));
      err.status = resp.status;
      err.parts = parts;
      err.excType = json && json.exc_type;
      throw err;
    }
    return json || {};
  }

  function say(kind, ...kids) {
    messages.replaceChildren(h('div', { class: `msg ${kind}` }, ...kids));
  }
  const showError = (e) => (e && e.parts
    ? say('error', e.parts.map((p) => h('p', {}, rich(p))))
    : say('error', e instanceof Error ? e.message : String(e)));
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

  const appPath = (name) => `${HOME}/${enc(name)}`;
  const cachePath = (name) => `/app/token-cache/${enc(name)}`;

  // Unsaved changes are never lost silently: leaving the page (closing, reloading, a link of
  // these pages, logging out) asks first while a form has changes.
  let hasUnsaved = () => false;
  let leaving = false;
  const unsaved = () => !leaving && hasUnsaved();
  const LEAVE = 'You have unsaved changes. Leave this page without saving them?';
  function mayLeave() {
    if (!unsaved()) return true;
    if (!window.confirm(LEAVE)) return false;
    leaving = true;
    return true;
  }
  window.addEventListener('beforeunload', (ev) => {
    if (!unsaved()) return;
    ev.preventDefault();
    ev.returnValue = '';
  });
  document.addEventListener('click', (ev) => {
    const a = ev.target instanceof Element ? ev.target.closest('a[href]') : null;
    if (!a || a.target || ev.defaultPrevented || a.getAttribute('href').startsWith('#')) return;
    if (!mayLeave()) ev.preventDefault();
  });

  // --- connections ------------------------------------------------------------------------

  // The states of `connected_apps.connection_status`, as people read them.
  const STATES = {
    connected: ['Connected', 'ok'],
    expired: ['Expired — renews on next use', 'soft'],
    refresh_failing: ['Refresh failing', 'warn'],
    needs_reconnect: ['Needs reconnect', 'warn'],
    not_connected: ['Not connected', 'off'],
  };

  function badge(state, id) {
    const [text, kind] = STATES[state] || [String(state), 'off'];
    return h('span', { class: `badge ${kind}`, id, 'data-state': state }, text);
  }

  function connectionStatus(app, who) {
    const q = new URLSearchParams({ connected_app: app });
    if (who) q.set('user', who);
    return api('GET', `/api/method/connected_apps.connection_status?${q}`).then((r) => r.message);
  }

  // `2026-12-01 10:15:00.000000` -> `2026-12-01 10:15 (Europe/Berlin)`.
  const when = (ts, tz) => `${String(ts).slice(0, 16)} (${tz})`;

  // What a person needs to know about a connection, from `connection_status`.
  function connectionFacts(st) {
    const dl = h('dl', { class: 'facts' });
    const add = (term, ...kids) => dl.append(h('dt', {}, term), h('dd', {}, ...kids));
    add('State', badge(st.state, 'connection-state'));
    if (st.state === 'not_connected') return dl;
    const granted = st.granted_scopes || [];
    const requested = st.requested_scopes || [];
    const dropped = requested.filter((x) => !granted.includes(x));
    add('Scopes granted', granted.length ? granted.join(', ') : 'none stated by the provider');
    add('Scopes requested', requested.length ? requested.join(', ') : 'none');
    if (dropped.length && granted.length) {
      add('Not granted', h('span', { class: 'warn-text', id: 'dropped-scopes' },
        `The provider did not grant ${dropped.join(', ')}.`));
    }
    add('Refresh token', st.has_refresh_token ? 'Yes — the token is renewed when it expires'
      : 'No — when the token expires, you must reconnect');
    let expiry = 'not stated by the provider';
    if (st.expires_at) {
      if (st.state === 'expired') expiry = `expired at ${when(st.expires_at, st.time_zone)} — renews on next use`;
      else if (st.state === 'connected') expiry = when(st.expires_at, st.time_zone);
      else expiry = `${when(st.expires_at, st.time_zone)}`;
    }
    add('Token expires', expiry);
    if (st.last_error) {
      add(st.state === 'refresh_failing' ? 'Last refresh failed' : 'Why',
        st.last_error, st.failing_since ? ` (since ${when(st.failing_since, st.time_zone)})` : '');
    }
    return dl;
  }

  // Shell quoting for one argument.
  const sq = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

  // "Use from code": the same call in curl and Python, with the app's name filled in.
  function snippets(app) {
    const url = `${location.origin}/api/method/connected_apps.get_access_token?connected_app=${enc(app)}`;
    const key = `# CONNECTED_APPS_AUTH="token <api_key>:<api_secret>" (connected-apps user api-key ${user})`;
    const curl = `${key}\ncurl -sS -H "Authorization: $CONNECTED_APPS_AUTH" \\\n  ${sq(url)}\n`;
    const python = `${key}\nimport json, os, urllib.request\n\nreq = urllib.request.Request(\n    ${JSON.stringify(url)},\n    headers={"Authorization": os.environ["CONNECTED_APPS_AUTH"]},\n)\nwith urllib.request.urlopen(req) as r:\n    print(json.load(r)["message"]["access_token"])\n`;
    return { curl, python };
  }

  function codePanel(app, label) {
    const { curl, python } = snippets(app);
    const block = (title, text, id) => h('div', { class: 'snippet' },
      h('div', { class: 'snippet-head' }, h('span', {}, title), copyButton(text, `the ${title} snippet for ${label}`)),
      h('pre', { id, tabindex: '0' }, h('code', {}, text)));
    return h('details', { class: 'code' },
      h('summary', {}, `Use from code: `, h('code', {}, app)),
      h('p', { class: 'muted' }, 'Scripts name the app by its name, not its provider. They authenticate with your API key.'),
      block('curl', curl, `curl-${app}`), block('Python', python, `python-${app}`));
  }

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
    if (new URLSearchParams(location.search).has('logged-out')) {
      showInfo('You have logged out. Log in again to continue.');
    }
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
    const deleted = params.get('deleted');
    if (deleted) showInfo(`The Connected App ${deleted} was deleted.`);

    async function load() {
      const q = filter.value.trim();
      const url = new URLSearchParams({
        fields: JSON.stringify(['name', 'provider_name', 'client_id']),
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
      const states = await Promise.all(rows.map((r) => connectionStatus(r.name)
        .then((st) => st.state).catch(() => null)));
      list.replaceChildren(h('table', { class: 'list' },
        h('caption', { class: 'sr-only' }, 'Connected Apps'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Provider'), h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'Your connection'), h('th', { scope: 'col' }, 'Client Id'))),
        rows.map((r, i) => h('tbody', { class: 'app-row' },
          h('tr', {},
            h('td', { 'data-label': 'Provider' }, h('a', { href: appPath(r.name) }, r.provider_name || r.name)),
            h('td', { 'data-label': 'Name' }, h('code', {}, r.name)),
            h('td', { 'data-label': 'Your connection' }, states[i] ? badge(states[i]) : h('span', { class: 'muted' }, 'unknown')),
            h('td', { 'data-label': 'Client Id' }, r.client_id || h('span', { class: 'muted' }, 'not set'))),
          h('tr', { class: 'code-row' }, h('td', { colspan: '4' }, codePanel(r.name, r.provider_name || r.name)))))));
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

  // Field labels, for messages that name a field (`authorization_uri must be …`).
  const LABELS = Object.fromEntries(LAYOUT.flatMap((s) => (s.columns || []).flat()).map(([k, l]) => [k, l]));
  const URL_FIELDS = ['openid_configuration', 'authorization_uri', 'token_uri', 'revocation_uri',
    'userinfo_uri', 'introspection_uri'];
  const isHttpUrl = (v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !!u.hostname;
    } catch { return false; }
  };

  // "Start from a provider preset" on the New Connected App page: a choice of the service's
  // provider presets (connected_apps.provider_presets); "Fill the form" hands `apply` the
  // normal Connected App fields of the chosen one. Returns the elements to show (none for
  // people who cannot create apps).
  const presetChoice = { list: null, id: '', values: {}, clientAuth: null };
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
      // The preset's client authentication is set on the service's own settings when the new
      // app is first saved (it is not a Connected App field).
      presetChoice.clientAuth = r.message.client_auth || null;
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
    hasUnsaved = () => canEdit && dirty;

    if (name) {
      doc = (await api('GET', `/api/resource/Connected%20App/${enc(name)}`)).data;
      savedSecret = doc.client_secret ?? null;
    }
    render();
    if (name) loadConnection();

    if (canEdit) {
      // Ctrl+S / ⌘S saves, as in Frappe's desk.
      document.addEventListener('keydown', (ev) => {
        if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key.toLowerCase() === 's') {
          ev.preventDefault();
          document.getElementById('app-form')?.requestSubmit();
        }
      });
    }

    function changed() {
      dirty = true;
      updateConnect();
    }

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
        changed();
        el.removeAttribute('aria-invalid');
      });
      // Hints say how to edit: a read-only form shows none.
      const hint = canEdit ? {
        openid_configuration: 'The discovery URL, e.g. https://accounts.google.com/.well-known/openid-configuration. “Get OpenID Configuration” fills the endpoints from it.',
        redirect_uri: name ? 'Register this URI at the provider.' : 'Known once the app is saved.',
        client_secret: savedSecret ? 'Saved. Type a new one to replace it.' : null,
      }[key] : null;
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
            const el = h('input', {
              type: 'text', id: `${key}-${i}-${f}`, 'aria-label': `${label} ${i + 1}`, value: row[f] ?? '', autocomplete: 'off',
            });
            if (!canEdit) el.readOnly = true;
            el.addEventListener('input', () => { row[f] = el.value; changed(); el.removeAttribute('aria-invalid'); });
            return h('td', { 'data-label': label }, el);
          }),
          canEdit ? h('td', {}, h('button', {
            type: 'button',
            'aria-label': `Remove ${item} ${i + 1}`,
            onclick: () => { rows.splice(i, 1); changed(); draw(); },
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
          changed();
          draw();
          tbody.lastElementChild?.querySelector('input')?.focus();
        },
      }, `Add ${item}`) : null;
      return [wrap, add ? h('div', { class: 'actions' }, add) : null];
    }

    function render() {
      setTitle();
      const sections = LAYOUT.map((s) => {
        const head = s.title ? h('h2', {}, s.title) : null;
        const inner = s.table ? table(s.table, s.item, s.cols)
          : h('div', { class: 'columns' }, s.columns.map((col) => h('div', {}, col.map(([k, l, o]) => input(k, l, o)))));
        return h('section', { class: 'card', 'aria-label': s.title || 'Provider' }, head, inner);
      });
      let bar = null;
      if (canEdit) {
        const save = h('button', { type: 'submit', class: 'primary', id: 'save', 'aria-keyshortcuts': 'Control+S' }, 'Save');
        const del = name ? h('button', { type: 'button', class: 'danger', id: 'delete-app' }, 'Delete') : null;
        if (del) del.addEventListener('click', () => deleteApp(del));
        // Always in view: the bar sticks to the bottom of the window.
        bar = h('div', { class: 'actions savebar' }, save,
          h('span', { class: 'muted shortcut' }, 'Ctrl+S'), del);
      }
      const form = h('form', { novalidate: true, id: 'app-form' }, sections, bar);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const save = document.getElementById('save');
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

    // Every problem of the form at once: [fieldId, label, message].
    function problems() {
      const out = [];
      if (!(doc.provider_name || '').trim()) out.push(['field-provider_name', 'Provider Name', 'is required.']);
      for (const k of URL_FIELDS) {
        const v = (doc[k] || '').trim();
        if (v && !isHttpUrl(v)) out.push([`field-${k}`, LABELS[k], 'must be a full http:// or https:// address.']);
      }
      (doc.query_parameters || []).forEach((r, i) => {
        if (!(r.key || '').trim() && (r.value || '').trim()) {
          out.push([`query_parameters-${i}-key`, `Extra Parameters, row ${i + 1}`, 'Key is required when a Value is given.']);
        }
      });
      return out;
    }

    // Shows the problems as one list, each naming its field and leading to it; the fields are
    // marked and the first is scrolled to and focused.
    function showProblems(list) {
      for (const el of document.querySelectorAll('#app-form [aria-invalid="true"]')) el.removeAttribute('aria-invalid');
      const items = list.map(([id, label, msg]) => {
        const el = id && document.getElementById(id);
        if (el) el.setAttribute('aria-invalid', 'true');
        const link = el ? h('a', { href: `#${id}`, onclick: (ev) => { ev.preventDefault(); el.focus(); } }, label) : h('strong', {}, label);
        return h('li', {}, link, ' ', msg);
      });
      say('error', h('p', {}, list.length === 1 ? 'Please correct this:' : `Please correct these ${list.length} fields:`),
        h('ul', { class: 'problems' }, items));
      const first = list.map(([id]) => id && document.getElementById(id)).find(Boolean);
      if (first) {
        first.scrollIntoView({ block: 'center' });
        first.focus({ preventScroll: true });
      }
    }

    // A server refusal that names fields (`token_uri must be …`): in the same list, with labels.
    function serverProblems(e) {
      const out = [];
      for (const part of e.parts || [e.message]) {
        let text = plain(part);
        let id = null;
        let label = null;
        for (const [k, l] of Object.entries(LABELS)) {
          const re = new RegExp(`\\b${k}\\b`);
          if (re.test(text)) {
            text = text.replace(re, '').trim();
            id = id || `field-${k}`;
            label = label || l;
          } else if (!label && text.startsWith(`${l} `)) {
            text = text.slice(l.length).trim();
            id = `field-${k}`;
            label = l;
          }
        }
        if (!label) return null;
        out.push([id, label, text]);
      }
      return out.length ? out : null;
    }

    // Saves when needed; returns false when the form is not valid.
    async function saveDoc() {
      if (!canEdit) return true;
      const list = problems();
      if (list.length) {
        showProblems(list);
        return false;
      }
      const out = {};
      for (const k of EDITABLE) if (k !== 'client_secret') out[k] = (doc[k] ?? '').trim();
      if ((doc.client_secret ?? null) !== savedSecret && doc.client_secret) out.client_secret = doc.client_secret;
      out.scopes = (doc.scopes || []).filter((r) => (r.scope || '').trim()).map((r) => ({ scope: r.scope.trim() }));
      out.query_parameters = (doc.query_parameters || []).filter((r) => (r.key || '').trim() || (r.value || '').trim())
        .map((r) => ({ key: (r.key || '').trim(), value: r.value || '' }));
      let saved;
      try {
        saved = name
          ? await api('PUT', `/api/resource/Connected%20App/${enc(name)}`, out)
          : await api('POST', '/api/resource/Connected%20App', out);
      } catch (e) {
        const named = serverProblems(e);
        if (!named) throw e;
        showProblems(named);
        return false;
      }
      const wasNew = !name;
      doc = saved.data;
      name = doc.name;
      savedSecret = doc.client_secret ?? null;
      dirty = false;
      if (wasNew) {
        if (presetChoice.clientAuth) {
          await api('POST', '/api/method/connected_apps.app_settings',
            { connected_app: name, client_auth: presetChoice.clientAuth });
          presetChoice.clientAuth = null;
        }
        history.replaceState(null, '', appPath(name));
        body.dataset.name = name;
      }
      render();
      loadConnection();
      return true;
    }

    // Fills the endpoints from the discovery document. A new app is saved for it; when the
    // discovery fails, that app is deleted again (no half-configured app stays behind) and the
    // form keeps what was typed.
    async function discover() {
      if (!(doc.openid_configuration || '').trim()) {
        showProblems([['field-openid_configuration', 'OpenID Configuration', 'is needed to get the configuration.']]);
        return;
      }
      const typed = { ...doc, scopes: [...(doc.scopes || [])], query_parameters: [...(doc.query_parameters || [])] };
      const wasNew = !name;
      if (!name || dirty) { if (!(await saveDoc())) return; }
      let r;
      try {
        r = await api('POST', '/api/method/run_doc_method',
          { dt: 'Connected App', dn: name, method: 'get_openid_configuration' });
      } catch (e) {
        if (wasNew && name) {
          await api('DELETE', `/api/resource/Connected%20App/${enc(name)}`).catch(() => {});
          name = null;
          delete body.dataset.name;
          doc = { ...typed, name: undefined, redirect_uri: '' };
          savedSecret = null;
          dirty = true;
          history.replaceState(null, '', `${HOME}/new`);
          render();
        }
        const err = new Error(`Get OpenID Configuration failed, so nothing was saved: ${e.message}`);
        err.parts = [`Get OpenID Configuration failed${wasNew ? ', so the app was not saved' : ''}: `
          + (e.parts || [e.message]).map(plain).join(' ')];
        document.getElementById('field-openid_configuration')?.setAttribute('aria-invalid', 'true');
        throw err;
      }
      doc = r.message;
      savedSecret = doc.client_secret ?? null;
      dirty = false;
      render();
      loadConnection();
      showInfo('The endpoints were filled from the OpenID configuration.');
      document.getElementById('get-openid')?.focus();
    }

    // What the app lacks before anyone can connect (empty: it can connect).
    function missingForConnect() {
      const need = [['client_id', 'Client Id'], ['authorization_uri', 'Authorization URI'], ['token_uri', 'Token URI']];
      return need.filter(([k]) => !(doc[k] || '').trim()).map(([, l]) => l);
    }

    function updateConnect() {
      const b = document.getElementById('connect');
      const why = document.getElementById('connect-why');
      if (!b) return;
      const missing = missingForConnect();
      b.disabled = missing.length > 0;
      if (why) {
        why.textContent = missing.length
          ? `To connect, the app needs ${missing.join(', ')}${canEdit ? ' (fill them in and save)' : ' (ask a System Manager)'}.` : '';
      }
    }

    async function connect(button) {
      await act(button, async () => {
        if (dirty && !(await saveDoc())) return;
        const r = await api('POST', '/api/method/run_doc_method', {
          dt: 'Connected App', dn: name, method: 'initiate_web_application_flow',
          args: JSON.stringify({ success_uri: appPath(name) }),
        });
        if (typeof r.message !== 'string' || !r.message) throw new Error('The provider address is missing.');
        leaving = true;
        location.assign(r.message);
      });
      updateConnect();
    }

    // Delete, with Frappe's refusal when connections link to the app and a way through:
    // delete those connections first (they are revoked at the provider), then the app.
    async function deleteApp(button) {
      const provider = doc.provider_name || name;
      if (!window.confirm(`Delete the Connected App ${provider} (${name})? This cannot be undone.`)) return;
      await act(button, async () => {
        try {
          await api('DELETE', `/api/resource/Connected%20App/${enc(name)}`);
        } catch (e) {
          if (e.excType !== 'LinkExistsError') throw e;
          await offerLinked(e);
          return;
        }
        dirty = false;
        leaving = true;
        location.assign(`${HOME}?deleted=${enc(provider)}`);
      });
    }

    async function offerLinked(e) {
      const q = new URLSearchParams({
        fields: JSON.stringify(['name', 'user']),
        filters: JSON.stringify([['connected_app', '=', name]]),
        limit_page_length: '0',
      });
      const linked = (await api('GET', `/api/resource/Token%20Cache?${q}`)).data || [];
      const all = h('button', { type: 'button', class: 'danger', id: 'delete-linked' },
        `Delete ${linked.length === 1 ? 'this connection' : `these ${linked.length} connections`} and the app`);
      all.addEventListener('click', () => {
        if (!window.confirm(`Delete ${linked.length} connection(s) (their tokens are revoked at the provider) and then the app?`)) return;
        act(all, async () => {
          for (const tc of linked) await api('DELETE', `/api/resource/Token%20Cache/${enc(tc.name)}`);
          await api('DELETE', `/api/resource/Connected%20App/${enc(name)}`);
          dirty = false;
          leaving = true;
          location.assign(`${HOME}?deleted=${enc(doc.provider_name || name)}`);
        });
      });
      say('error', ...(e.parts || [e.message]).map((p) => h('p', {}, rich(p))),
        h('p', {}, 'Connections still use this app:'),
        h('ul', {}, linked.map((tc) => h('li', {}, h('a', { href: cachePath(tc.name) }, tc.user || 'the app itself'), ` (${tc.name})`))),
        h('div', { class: 'actions' }, all));
      all.focus();
    }

    async function loadConnection() {
      const box = document.getElementById('connection-body');
      if (!box || !name) return;
      let st;
      try {
        st = await connectionStatus(name);
      } catch (e) {
        box.replaceChildren(h('p', { class: 'msg error' }, e.message));
        return;
      }
      const provider = doc.provider_name || name;
      const tcName = st.token_cache;
      const actions = h('div', { class: 'actions' });
      const connectBtn = h('button', { type: 'button', class: 'primary', id: 'connect' },
        st.state !== 'not_connected' ? 'Reconnect' : `Connect to ${provider}`);
      connectBtn.addEventListener('click', () => connect(connectBtn));
      actions.append(connectBtn);
      if (tcName) {
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
      box.replaceChildren(connectionFacts(st), actions, h('p', { class: 'muted', id: 'connect-why' }),
        st.state !== 'not_connected' ? codePanel(name, provider) : null);
      updateConnect();
    }
  }

  // Every connection for a System Manager; a plain user's own (the list API shows them only
  // the Token Caches they own).
  async function tokenCachePage() {
    const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
    content.replaceChildren(list);
    const deleted = new URLSearchParams(location.search).get('deleted');
    if (deleted) showInfo(`The connection ${deleted} was deleted.`);
    async function load() {
      const q = new URLSearchParams({
        fields: JSON.stringify(['name', 'user', 'connected_app', 'provider_name']),
        order_by: 'modified desc',
        limit_page_length: '0',
      });
      const rows = (await api('GET', `/api/resource/Token%20Cache?${q}`)).data || [];
      if (!rows.length) {
        list.replaceChildren(h('p', {}, systemManager ? 'Nobody is connected yet.'
          : 'You have no connections yet. Open a Connected App and connect your account.'));
        return;
      }
      const states = await Promise.all(rows.map((r) => (!r.user ? Promise.resolve(null)
        : connectionStatus(r.connected_app, systemManager ? r.user : null).catch(() => null))));
      list.replaceChildren(h('table', { class: 'list' },
        h('caption', { class: 'sr-only' }, 'Connections'),
        h('thead', {}, h('tr', {}, ['User', 'Connected App', 'State', 'Expires', 'Actions']
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
          const st = states[i];
          return h('tr', {},
            h('td', { 'data-label': 'User' }, h('a', { href: cachePath(r.name) }, r.user || 'the app itself')),
            h('td', { 'data-label': 'Connected App' }, h('a', { href: appPath(r.connected_app) }, r.provider_name || r.connected_app)),
            h('td', { 'data-label': 'State' }, st ? badge(st.state) : h('span', { class: 'muted' }, r.user ? 'unknown' : 'app token')),
            h('td', { 'data-label': 'Expires' }, st && st.expires_at ? when(st.expires_at, st.time_zone) : '—'),
            h('td', {}, del));
        }))));
    }
    await load();
  }

  // One connection: whose, to which app, its state, and Delete.
  async function tokenCacheFormPage() {
    const name = body.dataset.name;
    const tc = (await api('GET', `/api/resource/Token%20Cache/${enc(name)}`)).data;
    const title = `${tc.provider_name || tc.connected_app} · ${tc.user || 'the app itself'}`;
    document.getElementById('title').textContent = title;
    document.title = `${title} · Connected Apps`;
    const card = h('section', { class: 'card', 'aria-label': 'Connection' });
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'User'), h('dd', {}, tc.user || 'the app itself (client credentials)'),
      h('dt', {}, 'Connected App'), h('dd', {}, h('a', { href: appPath(tc.connected_app) }, tc.provider_name || tc.connected_app),
        ' ', h('code', {}, tc.connected_app)),
      h('dt', {}, 'Token Cache'), h('dd', {}, h('code', {}, tc.name)));
    let health = null;
    if (tc.user) {
      health = await connectionStatus(tc.connected_app, tc.user === user ? null : tc.user)
        .then(connectionFacts).catch((e) => h('p', { class: 'msg error' }, e.message));
    }
    const del = h('button', { type: 'button', class: 'danger', id: 'delete-connection' }, 'Delete');
    del.addEventListener('click', () => {
      if (!window.confirm('Delete this connection? Its tokens are revoked at the provider.')) return;
      act(del, async () => {
        await api('DELETE', `/api/resource/Token%20Cache/${enc(name)}`);
        location.assign(`/app/token-cache?deleted=${enc(name)}`);
      });
    });
    card.append(facts, health || '', h('div', { class: 'actions' }, del));
    content.replaceChildren(card);
  }

  function callbackErrorPage() {
    say('error', body.dataset.error || 'The connection could not be completed.');
    content.replaceChildren(h('p', {}, body.dataset.name
      ? h('a', { href: appPath(body.dataset.name) }, 'Back to the app page') : h('a', { href: HOME }, 'Back')));
  }

  function notFoundPage() {
    say('error', 'There is no such page.');
    content.replaceChildren(h('p', {}, h('a', { href: HOME }, 'Back to the Connected Apps')));
  }

  function forbiddenPage() {
    say('error', 'Only a System Manager can see every connection.');
    content.replaceChildren(h('p', {}, h('a', { href: HOME }, 'Back to the Connected Apps')));
  }

  // --- start ------------------------------------------------------------------------------

  const logout = document.getElementById('logout');
  if (logout) {
    logout.addEventListener('click', () => {
      if (!mayLeave()) return;
      act(logout, async () => {
        await api('POST', '/api/method/logout');
        leaving = true;
        location.assign('/login?logged-out=1');
      });
    });
  }

  const pages = {
    login: loginPage,
    'app-list': appListPage,
    'app-form': appFormPage,
    'token-cache': tokenCachePage,
    'token-cache-form': tokenCacheFormPage,
    'not-found': notFoundPage,
    'callback-error': callbackErrorPage,
    forbidden: forbiddenPage,
  };
  content.replaceChildren();
  Promise.resolve()
    .then(() => (pages[body.dataset.page] || (() => {}))())
    .catch(showError);
})();
