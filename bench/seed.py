#!/usr/bin/env python3
"""Seeds a connected-apps database with N Connected Apps (2 scopes, 1 query parameter each) and
N Token Caches (Administrator's connection to each app, a valid access token), with secrets
Fernet-encrypted under the site key as the service stores them. Writes SQL to stdout.

usage: seed.py N ENCRYPTION_KEY
"""
import random
import sys
from datetime import datetime, timedelta

from cryptography.fernet import Fernet

n = int(sys.argv[1])
f = Fernet(sys.argv[2].encode())
alphabet = "0123456789abcdefghijklmnopqrstuv"
rnd = random.Random(42)
now = datetime.utcnow()


def name():
    return "".join(rnd.choice(alphabet) for _ in range(10))


def q(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"


def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


out = sys.stdout
secret_token = f.encrypt(b"bench-client-secret").decode()
access = f.encrypt(b"bench-access-token").decode()
refresh = f.encrypt(b"bench-refresh-token").decode()
apps, scopes, params, caches, auth = [], [], [], [], []
for i in range(n):
    a = name()
    t = ts(now - timedelta(seconds=n - i))
    apps.append((a, t, t, "Administrator", "Administrator", 0, 0, f"Provider {i:06d}", None, f"client-{i}",
                 f"http://127.0.0.1:8000/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{a}",
                 "*" * 19, "https://provider.example/authorize", "https://provider.example/token",
                 "https://provider.example/revoke", None, None))
    for j, s in enumerate(["openid", "email"]):
        scopes.append((name(), t, t, "Administrator", "Administrator", 0, j + 1, s, a, "scopes", "Connected App"))
    params.append((name(), t, t, "Administrator", "Administrator", 0, 1, "access_type", "offline", a, "query_parameters", "Connected App"))
    auth.append(("Connected App", a, "client_secret", secret_token, 1))
    c = f"{a}-Administrator"
    tc_t = ts(now)
    caches.append((c, tc_t, tc_t, "Administrator", "Administrator", 0, 0, "Administrator", a, f"Provider {i:06d}",
                   "*" * 18, "*" * 19, 10_000_000, None, None, "Bearer"))
    scopes.append((name(), tc_t, tc_t, "Administrator", "Administrator", 0, 1, "openid", c, "scopes", "Token Cache"))
    auth.append(("Token Cache", c, "access_token", access, 1))
    auth.append(("Token Cache", c, "refresh_token", refresh, 1))


def insert(table, cols, rows):
    for k in range(0, len(rows), 500):
        chunk = rows[k:k + 500]
        out.write(f"INSERT INTO `{table}` ({', '.join('`%s`' % c for c in cols)}) VALUES\n")
        out.write(",\n".join("(" + ", ".join(q(v) for v in r) + ")" for r in chunk))
        out.write(";\n")


std = ["name", "creation", "modified", "modified_by", "owner", "docstatus", "idx"]
out.write("BEGIN;\n")
insert("tabConnected App", std + ["provider_name", "openid_configuration", "client_id", "redirect_uri", "client_secret",
                                  "authorization_uri", "token_uri", "revocation_uri", "userinfo_uri", "introspection_uri"], apps)
insert("tabOAuth Scope", std + ["scope", "parent", "parentfield", "parenttype"], scopes)
insert("tabQuery Parameters", std + ["key", "value", "parent", "parentfield", "parenttype"], params)
insert("tabToken Cache", std + ["user", "connected_app", "provider_name", "access_token", "refresh_token", "expires_in",
                                "state", "success_uri", "token_type"], caches)
insert("__Auth", ["doctype", "name", "fieldname", "password", "encrypted"], auth)
out.write("COMMIT;\n")
print(f"-- first app: {apps[0][0]}", file=sys.stderr)
