"""Drives the service with Frappe's own Python client, unchanged (tests/clients/frappe-client).

Run by tests/api/frappe_clients.rs against a fresh service. Every check prints one line,
`ok   <name>` or `FAIL <name>: <what differed>`, and the last line is `summary: N ok, M failing`.
Each expectation is what the same client call gets from a Frappe v15 site (the recordings in
tests/fixtures/frappe-reference, and Frappe v15's frappe/client.py, frappe/api, frappe/model/rename_doc.py).

How frappe-client reads answers matters for what a caller sees:
- a body with a truthy `exc` raises `FrappeException(exc)`; Frappe's `exc` is a JSON list of
  tracebacks whose last line names the exception class and message, so the checks compare that
  last line (`summary()`), which is all the service sends;
- otherwise it returns `message`, else `data`, else None: Frappe's 404s carry no `exc`, so a
  missing document reads as None, exactly as it does against Frappe.

Environment: SERVICE_URL, ADMIN_PASSWORD/ADMIN_KEY/ADMIN_SECRET (Administrator), SM_EMAIL/SM_PASSWORD/SM_KEY/SM_SECRET
(a System Manager), PLAIN_EMAIL/PLAIN_PASSWORD/PLAIN_KEY/PLAIN_SECRET (a user with no role but
All, a Website User as Frappe makes it), OTHER_EMAIL/OTHER_KEY/OTHER_SECRET (another such user).
"""

import json
import os
import re
import sys
import traceback
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "frappe-client"))

from frappeclient import FrappeClient  # noqa: E402
from frappeclient.frappeclient import AuthError, FrappeException  # noqa: E402

URL = os.environ["SERVICE_URL"]
ADMIN_PASSWORD = os.environ["ADMIN_PASSWORD"]
ADMIN_KEY, ADMIN_SECRET = os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"]
SM_EMAIL, SM_PASSWORD = os.environ["SM_EMAIL"], os.environ["SM_PASSWORD"]
SM_KEY, SM_SECRET = os.environ["SM_KEY"], os.environ["SM_SECRET"]
PLAIN_EMAIL, PLAIN_PASSWORD = os.environ["PLAIN_EMAIL"], os.environ["PLAIN_PASSWORD"]
PLAIN_KEY, PLAIN_SECRET = os.environ["PLAIN_KEY"], os.environ["PLAIN_SECRET"]
OTHER_EMAIL = os.environ["OTHER_EMAIL"]
OTHER_KEY, OTHER_SECRET = os.environ["OTHER_KEY"], os.environ["OTHER_SECRET"]

CA = "Connected App"
TC = "Token Cache"
CALLBACK = "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/"
HAS_TOKEN = "frappe.integrations.doctype.connected_app.connected_app.has_token"
NAME_RE = re.compile(r"^[0-9a-v]{10}$")

passed = 0
failed = 0


def check(name):
    """Runs the decorated function at once as one named check."""

    def run(fn):
        global passed, failed
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, never hidden
            failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            ours = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
            where = ours[-1].lineno if ours else "?"
            print(f"FAIL {name}: {detail} (line {where})", flush=True)
        else:
            passed += 1
            print(f"ok   {name}", flush=True)
        return fn

    return run


def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def summary(exc):
    """The last traceback line of a FrappeException's `exc`, as Frappe puts it there."""
    assert isinstance(exc, FrappeException), f"not a FrappeException: {exc!r}"
    raw = exc.args[0]
    try:
        tracebacks = json.loads(raw)
    except ValueError:
        raise AssertionError(f"exc is not a JSON list: {raw!r}")
    assert isinstance(tracebacks, list) and tracebacks, f"exc is not a non-empty list: {raw!r}"
    lines = [line for line in str(tracebacks[-1]).split("\n") if line.strip()]
    assert lines, f"exc holds no text: {raw!r}"
    return lines[-1]


def last_line(text):
    return [line for line in str(text).split("\n") if line.strip()][-1]


def raises(fn, exc_type=FrappeException):
    """Calls fn, which must raise exc_type; returns the exception."""
    try:
        value = fn()
    except exc_type as e:
        return e
    raise AssertionError(f"expected {exc_type.__name__}, the call returned {value!r}")


def frappe_error(fn, expected):
    """fn must raise FrappeException whose summary is `expected` (a string, or a regex)."""
    e = raises(fn)
    line = summary(e)
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(line), f"summary {line!r} does not match {expected.pattern!r}"
    else:
        eq(line, expected, "exception")
    return e


def url_quote(s):
    return quote(s, safe="")


def api_key_client(key, secret):
    return FrappeClient(URL, api_key=key, api_secret=secret)


def names(rows):
    return sorted(r["name"] for r in rows)


state = {}

# --- logging in -------------------------------------------------------------------------------


@check("login with password: Administrator (cmd=login on /)")
def _():
    c = FrappeClient(URL, "Administrator", ADMIN_PASSWORD)
    eq(c.get_api("frappe.auth.get_logged_user"), "Administrator", "logged user")
    state["admin"] = c


@check("login with password: a System Manager")
def _():
    c = FrappeClient(URL, SM_EMAIL, SM_PASSWORD)
    eq(c.get_api("frappe.auth.get_logged_user"), SM_EMAIL, "logged user")
    state["sm_session"] = c


@check("login with password: a plain user gets AuthError ('No App') but is logged in")
def _():
    # Frappe answers a Website User's login with message "No App"; frappe-client only accepts
    # "Logged In" and raises AuthError, while its session already holds the user's sid.
    c = FrappeClient(URL)
    raises(lambda: c.login(PLAIN_EMAIL, PLAIN_PASSWORD), AuthError)
    eq(c.get_api("frappe.auth.get_logged_user"), PLAIN_EMAIL, "logged user")
    state["plain_session"] = c


@check("login with a wrong password raises AuthError")
def _():
    raises(lambda: FrappeClient(URL, SM_EMAIL, "not-the-password"), AuthError)


@check("login as an unknown user raises AuthError")
def _():
    raises(lambda: FrappeClient(URL, "nobody@example.com", "whatever"), AuthError)


@check("API key: a System Manager")
def _():
    c = api_key_client(SM_KEY, SM_SECRET)
    eq(c.get_api("frappe.auth.get_logged_user"), SM_EMAIL, "logged user")
    state["sm"] = c


@check("API key: a plain user")
def _():
    c = api_key_client(PLAIN_KEY, PLAIN_SECRET)
    eq(c.get_api("frappe.auth.get_logged_user"), PLAIN_EMAIL, "logged user")
    state["plain"] = c
    state["other"] = api_key_client(OTHER_KEY, OTHER_SECRET)


@check("API key with a wrong secret raises AuthenticationError")
def _():
    c = api_key_client(SM_KEY, "wrong-secret")
    frappe_error(lambda: c.get_list(CA), "frappe.exceptions.AuthenticationError")


@check("logout (cmd=logout on /) ends the session")
def _():
    c = FrappeClient(URL, SM_EMAIL, SM_PASSWORD)
    eq(c.get_api("frappe.auth.get_logged_user"), SM_EMAIL, "before logout")
    c.logout()
    frappe_error(
        lambda: c.get_api("frappe.auth.get_logged_user"),
        "frappe.exceptions.PermissionError: <details><summary>You are not permitted to access "
        "this resource.</summary>Function <strong>frappe.auth.get_logged_user</strong> is not "
        "whitelisted.</details>",
    )


@check("a with-block logs out when it ends")
def _():
    with FrappeClient(URL, SM_EMAIL, SM_PASSWORD) as c:
        eq(c.get_api("frappe.auth.get_logged_user"), SM_EMAIL, "inside")
    frappe_error(lambda: c.get_list(CA), "frappe.exceptions.PermissionError")


@check("no credentials: a list is refused")
def _():
    frappe_error(lambda: FrappeClient(URL).get_list(CA), "frappe.exceptions.PermissionError")


# When a login check failed, the rest still runs on API keys (and says what else fails).
admin = state.get("admin") or api_key_client(ADMIN_KEY, ADMIN_SECRET)
sm = state.get("sm") or api_key_client(SM_KEY, SM_SECRET)
plain = state.get("plain") or api_key_client(PLAIN_KEY, PLAIN_SECRET)
other = state.get("other") or api_key_client(OTHER_KEY, OTHER_SECRET)

# --- documents: insert, get, update -----------------------------------------------------------

ALPHA = {
    "doctype": CA,
    "provider_name": "Alpha",
    "client_id": "alpha-id",
    "client_secret": "alpha-secret",
    "authorization_uri": "https://alpha.example/authorize",
    "token_uri": "https://alpha.example/token",
    "scopes": [{"scope": "openid"}, {"scope": "email"}],
    "query_parameters": [{"key": "prompt", "value": "consent"}],
}


@check("insert a Connected App with both child tables")
def _():
    doc = admin.insert(ALPHA)
    name = doc["name"]
    assert NAME_RE.match(name), f"name {name!r} is not a Frappe hash name"
    eq(doc["doctype"], CA, "doctype")
    eq(doc["provider_name"], "Alpha", "provider_name")
    eq(doc["client_secret"], "*" * len("alpha-secret"), "client_secret is masked")
    eq(doc["redirect_uri"], URL + CALLBACK + name, "redirect_uri")
    eq(doc["owner"], "Administrator", "owner")
    eq([(s["scope"], s["idx"], s["parent"], s["parentfield"], s["parenttype"], s["doctype"])
        for s in doc["scopes"]],
       [("openid", 1, name, "scopes", CA, "OAuth Scope"), ("email", 2, name, "scopes", CA, "OAuth Scope")],
       "scopes")
    assert all(NAME_RE.match(s["name"]) for s in doc["scopes"]), "child rows have hash names"
    eq([(q["key"], q["value"], q["doctype"]) for q in doc["query_parameters"]],
       [("prompt", "consent", "Query Parameters")], "query_parameters")
    state["alpha"] = name
    state["alpha_doc"] = doc


for provider, client_id, scopes in [("Beta", "shared-id", ["openid"]), ("Gamma", "shared-id", [])]:

    @check(f"insert {provider}")
    def _(provider=provider, client_id=client_id, scopes=scopes):
        doc = sm.insert({"doctype": CA, "provider_name": provider, "client_id": client_id,
                         "token_uri": f"https://{provider.lower()}.example/token",
                         "scopes": [{"scope": s} for s in scopes]})
        eq(doc["provider_name"], provider, "provider_name")
        eq(doc["scopes"] and [s["scope"] for s in doc["scopes"]], scopes or [], "scopes")
        state[provider.lower()] = doc["name"]


ALPHA_N = state.get("alpha", "missing-alpha")
BETA_N = state.get("beta", "missing-beta")
GAMMA_N = state.get("gamma", "missing-gamma")


@check("get_doc returns the whole document with child tables")
def _():
    doc = sm.get_doc(CA, ALPHA_N)
    eq(doc["name"], ALPHA_N, "name")
    eq(doc["client_id"], "alpha-id", "client_id")
    eq(doc["client_secret"], "************", "client_secret")
    eq([s["scope"] for s in doc["scopes"]], ["openid", "email"], "scopes")
    eq([q["key"] for q in doc["query_parameters"]], ["prompt"], "query_parameters")
    assert "__unsaved" not in doc["scopes"][0], "a stored row is not __unsaved"


@check("get_doc ignores fields and filters (as Frappe's /api/resource/<doctype>/<name>)")
def _():
    doc = sm.get_doc(CA, ALPHA_N, fields=["provider_name"], filters={"provider_name": "nope"})
    eq(doc["name"], ALPHA_N, "name")
    eq(doc["client_id"], "alpha-id", "client_id")


@check("get_doc of a missing document returns None (Frappe's 404 carries no exc)")
def _():
    eq(sm.get_doc(CA, "doesnotexist"), None, "get_doc")


@check("update replaces a child table and keeps rows sent with their name")
def _():
    kept = state["alpha_doc"]["scopes"][0]
    doc = admin.update({"doctype": CA, "name": ALPHA_N, "provider_name": "Alpha Two",
                        "scopes": [{"name": kept["name"], "scope": "openid"}, {"scope": "profile"}]})
    eq(doc["provider_name"], "Alpha Two", "provider_name")
    eq([s["scope"] for s in doc["scopes"]], ["openid", "profile"], "scopes")
    eq(doc["scopes"][0]["name"], kept["name"], "the kept row's name")
    eq(doc["client_secret"], "************", "the secret is kept")
    again = sm.get_doc(CA, ALPHA_N)
    eq([s["scope"] for s in again["scopes"]], ["openid", "profile"], "stored scopes")
    eq(again["provider_name"], "Alpha Two", "stored provider_name")


@check("update of a missing document returns None and creates nothing")
def _():
    eq(admin.update({"doctype": CA, "name": "doesnotexist", "provider_name": "X"}), None, "update")
    eq(sm.get_value(CA, "name", {"provider_name": "X"}), {}, "nothing created")


@check("insert without the mandatory provider_name raises MandatoryError")
def _():
    frappe_error(lambda: sm.insert({"doctype": CA, "client_id": "no-provider"}),
                 re.compile(r"frappe\.exceptions\.MandatoryError: \[Connected App, [0-9a-v]{10}\]: provider_name"))
    eq(sm.get_value(CA, "name", {"client_id": "no-provider"}), {}, "nothing created")


@check("insert_many fails inside frappe-client itself (NameError: frappe), sending nothing")
def _():
    raises(lambda: sm.insert_many([{"doctype": CA, "provider_name": "Many"}]), NameError)
    eq(sm.get_value(CA, "name", {"provider_name": "Many"}), {}, "nothing created")


# 21 more apps to page through (the default page is 20).
PAGE = []


@check("insert 21 apps for paging")
def _():
    for i in range(21):
        PAGE.append(sm.insert({"doctype": CA, "provider_name": f"Page {i:02}", "client_id": "page-id"})["name"])
    eq(len(set(PAGE)), 21, "distinct names")


# --- lists ------------------------------------------------------------------------------------


@check("get_list with default arguments: every column, no child tables, secrets masked, 20 rows")
def _():
    rows = sm.get_list(CA)
    eq(len(rows), 20, "default page length")
    alpha = sm.get_list(CA, filters={"name": ALPHA_N})
    eq(len(alpha), 1, "rows")
    row = alpha[0]
    eq(row["client_secret"], "************", "client_secret")
    eq(row["openid_configuration"], None, "an empty column is null")
    assert "scopes" not in row, "no child tables in lists"
    for key in ["name", "owner", "creation", "modified", "modified_by", "docstatus", "idx",
                "provider_name", "client_id", "redirect_uri", "token_uri"]:
        assert key in row, f"{key} missing from fields=['*']"


@check("get_list with fields keeps their order")
def _():
    rows = sm.get_list(CA, fields=["provider_name", "name"], filters={"name": BETA_N})
    eq(rows, [{"provider_name": "Beta", "name": BETA_N}], "rows")
    eq(list(rows[0].keys()), ["provider_name", "name"], "key order")


@check("get_list filters as a dict")
def _():
    eq(names(sm.get_list(CA, fields=["name"], filters={"client_id": "shared-id"})),
       sorted([BETA_N, GAMMA_N]), "names")


@check("get_list filters as a dict with operators")
def _():
    rows = sm.get_list(CA, fields=["name"], filters={"provider_name": ["like", "%lpha%"]})
    eq(names(rows), [ALPHA_N], "like")
    rows = sm.get_list(CA, fields=["name"], filters={"client_id": ["in", ["alpha-id", "shared-id"]]})
    eq(names(rows), sorted([ALPHA_N, BETA_N, GAMMA_N]), "in")


@check("get_list filters as a list of 3-lists")
def _():
    rows = sm.get_list(CA, fields=["name"], filters=[["client_id", "=", "shared-id"],
                                                     ["provider_name", "!=", "Beta"]])
    eq(names(rows), [GAMMA_N], "names")


@check("get_list filters as a list of 4-lists")
def _():
    rows = sm.get_list(CA, fields=["name"],
                       filters=[[CA, "provider_name", "in", ["Alpha Two", "Gamma"]]])
    eq(names(rows), sorted([ALPHA_N, GAMMA_N]), "names")


@check("get_list operators: not in, not like, is set / not set, >, <=, between")
def _():
    ours = [ALPHA_N, BETA_N, GAMMA_N]
    base = [["name", "in", ours]]

    def q(*extra):
        return names(sm.get_list(CA, fields=["name"], filters=base + list(extra)))

    eq(q(["provider_name", "not in", ["Beta"]]), sorted([ALPHA_N, GAMMA_N]), "not in")
    eq(q(["provider_name", "not like", "%a"]), [ALPHA_N], "not like")
    eq(q(["client_secret", "is", "set"]), [ALPHA_N], "is set")
    eq(q(["authorization_uri", "is", "not set"]), sorted([BETA_N, GAMMA_N]), "is not set")
    eq(q(["provider_name", ">", "Beta"]), [GAMMA_N], ">")
    eq(q(["provider_name", "<=", "Beta"]), sorted([ALPHA_N, BETA_N]), "<=")
    alpha = sm.get_doc(CA, ALPHA_N)
    eq(q(["creation", "between", [alpha["creation"], alpha["creation"]]]), [ALPHA_N], "between")


@check("get_list filters on a child table")
def _():
    rows = sm.get_list(CA, fields=["name"], filters=[["OAuth Scope", "scope", "=", "profile"]])
    eq(names(rows), [ALPHA_N], "names")


@check("get_list order_by, both directions")
def _():
    asc = sm.get_list(CA, fields=["provider_name"], filters={"client_id": "shared-id"},
                      order_by="provider_name asc")
    eq([r["provider_name"] for r in asc], ["Beta", "Gamma"], "asc")
    desc = sm.get_list(CA, fields=["provider_name"], filters={"client_id": "shared-id"},
                       order_by="provider_name desc")
    eq([r["provider_name"] for r in desc], ["Gamma", "Beta"], "desc")


@check("get_list paging with limit_start and limit_page_length")
def _():
    f = {"client_id": "page-id"}
    first = sm.get_list(CA, fields=["provider_name"], filters=f, order_by="provider_name asc",
                        limit_start=0, limit_page_length=5)
    eq([r["provider_name"] for r in first], [f"Page {i:02}" for i in range(5)], "page 1")
    third = sm.get_list(CA, fields=["provider_name"], filters=f, order_by="provider_name asc",
                        limit_start=10, limit_page_length=5)
    eq([r["provider_name"] for r in third], [f"Page {i:02}" for i in range(10, 15)], "page 3")
    tail = sm.get_list(CA, fields=["provider_name"], filters=f, order_by="provider_name asc",
                       limit_start=20, limit_page_length=5)
    eq([r["provider_name"] for r in tail], ["Page 20"], "last page")
    eq(sm.get_list(CA, fields=["name"], filters=f, limit_start=100, limit_page_length=5), [], "past the end")


@check("get_list with an aggregate field")
def _():
    eq(sm.get_list(CA, fields=["count(name) as cnt"], filters={"client_id": "page-id"}),
       [{"cnt": 21}], "count")


@check("get_list with an unknown field raises DataError")
def _():
    frappe_error(lambda: sm.get_list(CA, fields=["name", "nonexistent_field"]),
                 "frappe.exceptions.DataError: Field not permitted in query: nonexistent_field")


@check("get_list as a plain user reads every app")
def _():
    rows = plain.get_list(CA, fields=["name", "client_secret"], filters={"name": ALPHA_N})
    eq(rows, [{"name": ALPHA_N, "client_secret": "************"}], "rows")


# --- method calls: get_api / post_api (always with a trailing '/') ------------------------------


@check("get_api frappe.client.get_count, with and without filters")
def _():
    total = sm.get_api("frappe.client.get_count", {"doctype": CA})
    eq(total, 24, "count")
    eq(sm.get_api("frappe.client.get_count",
                  {"doctype": CA, "filters": json.dumps({"client_id": "page-id"})}), 21, "filtered")
    eq(sm.get_api("frappe.client.get_count",
                  {"doctype": CA, "filters": json.dumps([["client_id", "like", "%shared%"]])}), 2,
       "list filters")


@check("get_api frappe.client.get_list with group_by and aggregates")
def _():
    rows = sm.get_api("frappe.client.get_list", {
        "doctype": CA,
        "fields": json.dumps(["client_id", "count(name) as count"]),
        "group_by": "client_id",
        "order_by": "client_id asc",
    })
    eq(rows, [{"client_id": "alpha-id", "count": 1}, {"client_id": "page-id", "count": 21},
              {"client_id": "shared-id", "count": 2}], "groups")


@check("post_api frappe.client.get_list (arguments in the query string)")
def _():
    rows = sm.post_api("frappe.client.get_list", {"doctype": CA, "fields": json.dumps(["name"]),
                                                  "filters": json.dumps({"name": BETA_N})})
    eq(rows, [{"name": BETA_N}], "rows")


@check("get_api has_token: no connection yet")
def _():
    eq(sm.get_api(HAS_TOKEN, {"connected_app": ALPHA_N}), False, "has_token")


@check("get_api frappe.client.get_single_value on a non-single doctype")
def _():
    eq(sm.get_api("frappe.client.get_single_value", {"doctype": CA, "field": "provider_name"}), "",
       "Data field")
    eq(sm.get_api("frappe.client.get_single_value", {"doctype": TC, "field": "expires_in"}), 0,
       "Int field")
    frappe_error(lambda: sm.get_api("frappe.client.get_single_value", {"doctype": CA, "field": "nope"}),
                 "frappe.exceptions.ValidationError: Field <strong>nope</strong> does not exist on "
                 "<strong>Connected App</strong>")


@check("get_api of a method that does not exist raises ValidationError")
def _():
    frappe_error(lambda: sm.get_api("frappe.client.nonexistent"),
                 "frappe.exceptions.ValidationError: Failed to get method for command "
                 "frappe.client.nonexistent with module 'frappe.client' has no attribute 'nonexistent'")


@check("post_api run_doc_method initiate_web_application_flow as a plain user")
def _():
    url = plain.post_api("run_doc_method", {"dt": CA, "dn": ALPHA_N,
                                            "method": "initiate_web_application_flow"})
    prefix = ("https://alpha.example/authorize?response_type=code&client_id=alpha-id&redirect_uri="
              + url_quote(URL + CALLBACK + ALPHA_N) + "&scope=openid+profile&state=")
    assert isinstance(url, str) and url.startswith(prefix), f"url {url!r} does not start with {prefix!r}"
    assert url.endswith("&prompt=consent"), f"url {url!r} lacks the query parameters"
    # The flow is started: the user's Token Cache holds its state, but no token yet.
    eq(plain.get_value(TC, ["user", "connected_app"], f"{ALPHA_N}-{PLAIN_EMAIL}"),
       {"user": PLAIN_EMAIL, "connected_app": ALPHA_N}, "Token Cache")
    eq(plain.get_api(HAS_TOKEN, {"connected_app": ALPHA_N}), False, "has_token afterwards")


@check("post_api run_doc_method of a method that is not whitelisted is refused")
def _():
    frappe_error(
        lambda: sm.post_api("run_doc_method", {"dt": CA, "dn": ALPHA_N, "method": "get_scopes"}),
        "frappe.exceptions.PermissionError: <details><summary>You are not permitted to access this "
        "resource.</summary>Function <strong>frappe.integrations.doctype.connected_app.connected_app."
        "get_scopes</strong> is not whitelisted.</details>",
    )


# --- get_value / set_value --------------------------------------------------------------------


@check("get_value: one field by name")
def _():
    eq(sm.get_value(CA, "provider_name", ALPHA_N), {"provider_name": "Alpha Two"}, "by name")


@check("get_value: several fields, dict filters")
def _():
    eq(sm.get_value(CA, ["provider_name", "client_id"], {"name": BETA_N}),
       {"provider_name": "Beta", "client_id": "shared-id"}, "dict filters")


@check("get_value: list filters with an operator")
def _():
    eq(sm.get_value(CA, "name", [["provider_name", "like", "Gam%"]]), {"name": GAMMA_N}, "list filters")


@check("get_value: a secret reads as asterisks, a missing row as {}")
def _():
    eq(sm.get_value(CA, "client_secret", ALPHA_N), {"client_secret": "************"}, "secret")
    eq(sm.get_value(CA, "provider_name", "doesnotexist"), {}, "missing")


@check("get_value of an unknown field raises DataError")
def _():
    frappe_error(lambda: sm.get_value(CA, "nope", ALPHA_N),
                 "frappe.exceptions.DataError: Field not permitted in query: nope")


@check("set_value of one field returns the saved document")
def _():
    doc = admin.set_value(CA, BETA_N, "client_id", "beta-id")
    eq(doc["name"], BETA_N, "name")
    eq(doc["client_id"], "beta-id", "client_id")
    eq(doc["provider_name"], "Beta", "provider_name")
    eq(sm.get_value(CA, "client_id", BETA_N), {"client_id": "beta-id"}, "stored")


@check("set_value with a dict of fields")
def _():
    doc = sm.set_value(CA, BETA_N, {"provider_name": "Beta Two", "userinfo_uri": "https://beta.example/me"}, None)
    eq((doc["provider_name"], doc["userinfo_uri"]), ("Beta Two", "https://beta.example/me"), "returned")
    eq(sm.get_value(CA, ["provider_name", "userinfo_uri"], BETA_N),
       {"provider_name": "Beta Two", "userinfo_uri": "https://beta.example/me"}, "stored")


@check("set_value of a standard field is refused")
def _():
    frappe_error(lambda: admin.set_value(CA, BETA_N, "owner", "someone@example.com"),
                 "frappe.exceptions.ValidationError: Cannot edit standard fields")
    eq(sm.get_value(CA, "owner", BETA_N), {"owner": SM_EMAIL}, "owner unchanged")


@check("set_value clearing a mandatory field raises MandatoryError")
def _():
    frappe_error(lambda: sm.set_value(CA, BETA_N, "provider_name", ""),
                 f"frappe.exceptions.MandatoryError: [Connected App, {BETA_N}]: provider_name")
    eq(sm.get_value(CA, "provider_name", BETA_N), {"provider_name": "Beta Two"}, "unchanged")


@check("set_value on a missing document returns None and creates nothing")
def _():
    eq(sm.set_value(CA, "doesnotexist", "client_id", "x"), None, "set_value")
    eq(sm.get_value(CA, "name", "doesnotexist"), {}, "nothing created")


@check("set_value by a plain user is refused and changes nothing")
def _():
    frappe_error(lambda: plain.set_value(CA, BETA_N, "client_id", "hijacked"),
                 "frappe.exceptions.PermissionError")
    eq(sm.get_value(CA, "client_id", BETA_N), {"client_id": "beta-id"}, "unchanged")


# --- rename_doc -------------------------------------------------------------------------------


@check("rename_doc: Connected App does not allow renaming")
def _():
    frappe_error(lambda: admin.rename_doc(CA, GAMMA_N, "gamma-renamed"),
                 "frappe.exceptions.ValidationError: Connected App not allowed to be renamed")
    eq(sm.get_value(CA, "provider_name", GAMMA_N), {"provider_name": "Gamma"}, "still there")
    eq(sm.get_value(CA, "name", "gamma-renamed"), {}, "no new name")


@check("rename_doc: onto another existing document")
def _():
    frappe_error(lambda: admin.rename_doc(CA, GAMMA_N, BETA_N),
                 f"frappe.exceptions.ValidationError: Another Connected App with name {BETA_N} "
                 "exists, select another name")


@check("rename_doc: to the same name")
def _():
    frappe_error(lambda: admin.rename_doc(CA, GAMMA_N, GAMMA_N),
                 "frappe.exceptions.ValidationError: No changes made because old and new name are "
                 "the same.")


@check("rename_doc: a plain user needs write permission")
def _():
    frappe_error(lambda: plain.rename_doc(CA, GAMMA_N, "by-plain"),
                 f"frappe.exceptions.ValidationError: You need write permission on Connected App "
                 f"{GAMMA_N} to rename")


@check("rename_doc: a missing document returns None (Frappe's 404 carries no exc)")
def _():
    eq(admin.rename_doc(CA, "doesnotexist", "whatever"), None, "rename_doc")


# --- bulk_update ------------------------------------------------------------------------------


@check("bulk_update saves each document by docname and reports the failures")
def _():
    out = sm.bulk_update([
        {"doctype": CA, "docname": GAMMA_N, "client_id": "gamma-bulk", "revocation_uri": "https://gamma.example/revoke"},
        {"doctype": CA, "docname": "doesnotexist", "client_id": "x"},
        {"doctype": CA, "docname": BETA_N, "provider_name": ""},
        {"doctype": CA, "name": BETA_N, "client_id": "by-name"},
    ])
    failed_docs = out["failed_docs"]
    eq([f["doc"].get("docname", f["doc"].get("name")) for f in failed_docs],
       ["doesnotexist", BETA_N, BETA_N], "failed docs")
    eq(last_line(failed_docs[0]["exc"]),
       "frappe.exceptions.DoesNotExistError: Connected App doesnotexist not found", "missing")
    eq(last_line(failed_docs[1]["exc"]),
       f"frappe.exceptions.MandatoryError: [Connected App, {BETA_N}]: provider_name", "mandatory")
    eq(last_line(failed_docs[2]["exc"]), "KeyError: 'docname'", "by name")
    eq(failed_docs[1]["doc"], {"doctype": CA, "docname": BETA_N, "provider_name": ""}, "doc echoed")
    eq(sm.get_value(CA, ["client_id", "revocation_uri"], GAMMA_N),
       {"client_id": "gamma-bulk", "revocation_uri": "https://gamma.example/revoke"}, "saved")
    eq(sm.get_value(CA, ["provider_name", "client_id"], BETA_N),
       {"provider_name": "Beta Two", "client_id": "beta-id"}, "failed docs unchanged")


@check("bulk_update of child tables")
def _():
    out = sm.bulk_update([{"doctype": CA, "docname": GAMMA_N, "scopes": [{"scope": "read"}, {"scope": "write"}]}])
    eq(out, {"failed_docs": []}, "result")
    eq([s["scope"] for s in sm.get_doc(CA, GAMMA_N)["scopes"]], ["read", "write"], "stored scopes")


@check("bulk_update by a plain user fails every document and changes nothing")
def _():
    out = plain.bulk_update([{"doctype": CA, "docname": GAMMA_N, "client_id": "hijacked"}])
    eq(len(out["failed_docs"]), 1, "failed docs")
    eq(last_line(out["failed_docs"][0]["exc"]), "frappe.exceptions.PermissionError", "exception")
    eq(sm.get_value(CA, "client_id", GAMMA_N), {"client_id": "gamma-bulk"}, "unchanged")


# --- Token Cache ------------------------------------------------------------------------------

PLAIN_TC = f"{ALPHA_N}-{PLAIN_EMAIL}"
OTHER_TC = f"{GAMMA_N}-{OTHER_EMAIL}"


@check("Token Cache: insert with scopes (System Manager)")
def _():
    doc = sm.insert({"doctype": TC, "connected_app": GAMMA_N, "user": OTHER_EMAIL,
                     "access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600,
                     "token_type": "Bearer", "scopes": [{"scope": "read"}, {"scope": "write"}]})
    eq(doc["name"], OTHER_TC, "name")
    eq(doc["provider_name"], "Gamma", "provider_name fetched from the app")
    eq(doc["access_token"], "****", "access_token masked")
    eq(doc["refresh_token"], "****", "refresh_token masked")
    eq([(s["scope"], s["parenttype"], s["parentfield"]) for s in doc["scopes"]],
       [("read", TC, "scopes"), ("write", TC, "scopes")], "scopes")


@check("Token Cache: get_doc, update, set_value and get_value (System Manager)")
def _():
    doc = sm.get_doc(TC, OTHER_TC)
    eq((doc["user"], doc["connected_app"], doc["expires_in"]), (OTHER_EMAIL, GAMMA_N, 3600), "doc")
    doc = sm.update({"doctype": TC, "name": OTHER_TC, "scopes": [{"scope": "read"}]})
    eq([s["scope"] for s in doc["scopes"]], ["read"], "scopes replaced")
    doc = sm.set_value(TC, OTHER_TC, "expires_in", 7200)
    eq(doc["expires_in"], 7200, "expires_in returned")
    eq(sm.get_value(TC, ["expires_in", "access_token"], OTHER_TC),
       {"expires_in": 7200, "access_token": "****"}, "stored")


@check("Token Cache: a plain user lists, counts and reads only its own")
def _():
    eq(names(plain.get_list(TC, fields=["name"])), [PLAIN_TC], "list")
    # Frappe counts every Token Cache here (2); counting only readable ones is a declared
    # difference (README "Differences from Frappe", tests/compat/deviations.json).
    eq(plain.get_api("frappe.client.get_count", {"doctype": TC}), 1, "count")
    doc = plain.get_doc(TC, PLAIN_TC)
    eq((doc["user"], doc["connected_app"], doc["owner"]), (PLAIN_EMAIL, ALPHA_N, PLAIN_EMAIL), "own doc")
    eq(plain.get_value(TC, "name", OTHER_TC), {}, "another's is invisible to get_value")
    frappe_error(lambda: plain.get_doc(TC, OTHER_TC), "frappe.exceptions.PermissionError")


@check("Token Cache: lists with filters and grouping (System Manager)")
def _():
    rows = sm.get_list(TC, fields=["name", "user"], filters=[["expires_in", ">", 100]])
    eq(rows, [{"name": OTHER_TC, "user": OTHER_EMAIL}], "expires_in > 100")
    rows = sm.get_list(TC, fields=["name"], filters={"user": ["in", [PLAIN_EMAIL, OTHER_EMAIL]]},
                       order_by="name asc")
    eq([r["name"] for r in rows], sorted([PLAIN_TC, OTHER_TC]), "in")
    groups = sm.get_api("frappe.client.get_list", {
        "doctype": TC, "fields": json.dumps(["connected_app", "count(name) as n", "sum(expires_in) as total"]),
        "group_by": "connected_app", "order_by": "connected_app asc"})
    expected = sorted([{"connected_app": ALPHA_N, "n": 1, "total": 0},
                       {"connected_app": GAMMA_N, "n": 1, "total": 7200}], key=lambda g: g["connected_app"])
    eq([{**g, "total": int(g["total"])} for g in groups], expected, "groups")


@check("Token Cache: writes by a plain user are refused")
def _():
    frappe_error(lambda: plain.set_value(TC, PLAIN_TC, "expires_in", 1), "frappe.exceptions.PermissionError")
    frappe_error(lambda: plain.insert({"doctype": TC, "connected_app": GAMMA_N, "user": PLAIN_EMAIL}),
                 "frappe.exceptions.PermissionError")
    frappe_error(lambda: plain.delete(TC, OTHER_TC),
                 f"frappe.exceptions.PermissionError: User not allowed to delete Token Cache: {OTHER_TC}")
    frappe_error(lambda: other.delete(TC, PLAIN_TC),
                 f"frappe.exceptions.PermissionError: User not allowed to delete Token Cache: {PLAIN_TC}")
    eq(sm.get_value(TC, "expires_in", OTHER_TC), {"expires_in": 7200}, "unchanged")
    eq(sm.get_value(TC, "name", PLAIN_TC), {"name": PLAIN_TC}, "still there")
    eq(sm.get_value(TC, "name", f"{GAMMA_N}-{PLAIN_EMAIL}"), {}, "nothing created")


@check("Token Cache: rename is refused")
def _():
    frappe_error(lambda: sm.rename_doc(TC, OTHER_TC, "renamed-cache"),
                 "frappe.exceptions.ValidationError: Token Cache not allowed to be renamed")


@check("Token Cache: bulk_update")
def _():
    out = sm.bulk_update([{"doctype": TC, "docname": OTHER_TC, "success_uri": "/app/after"}])
    eq(out, {"failed_docs": []}, "result")
    eq(sm.get_value(TC, "success_uri", OTHER_TC), {"success_uri": "/app/after"}, "stored")


@check("delete of a Connected App a Token Cache links to raises LinkExistsError")
def _():
    frappe_error(lambda: admin.delete(CA, GAMMA_N),
                 f"frappe.exceptions.LinkExistsError: Cannot delete or cancel because Connected App "
                 f"<a href=\"/app/Form/Connected App/{GAMMA_N}\">{GAMMA_N}</a> is linked with Token Cache "
                 f"<a href=\"/app/Form/Token Cache/{OTHER_TC}\">{OTHER_TC}</a> ")
    eq(sm.get_value(CA, "name", GAMMA_N), {"name": GAMMA_N}, "still there")


@check("Token Cache: a plain user deletes its own")
def _():
    eq(plain.delete(TC, PLAIN_TC), None, "delete")
    eq(sm.get_value(TC, "name", PLAIN_TC), {}, "gone")
    eq(plain.get_doc(TC, PLAIN_TC), None, "get_doc afterwards")


@check("Token Cache: delete by a System Manager")
def _():
    eq(sm.delete(TC, OTHER_TC), None, "delete")
    eq(sm.get_doc(TC, OTHER_TC), None, "gone")


# --- delete -----------------------------------------------------------------------------------


@check("delete by a plain user is refused and deletes nothing")
def _():
    frappe_error(lambda: plain.delete(CA, BETA_N),
                 f"frappe.exceptions.PermissionError: User not allowed to delete Connected App: {BETA_N}")
    eq(sm.get_value(CA, "name", BETA_N), {"name": BETA_N}, "still there")


@check("delete by a plain user's password session is refused too")
def _():
    c = state.get("plain_session")
    assert c is not None, "no plain session"
    frappe_error(lambda: c.delete(CA, BETA_N),
                 f"frappe.exceptions.PermissionError: User not allowed to delete Connected App: {BETA_N}")
    eq(sm.get_value(CA, "name", BETA_N), {"name": BETA_N}, "still there")


@check("delete returns None and the document is gone")
def _():
    eq(admin.delete(CA, GAMMA_N), None, "delete")
    eq(sm.get_doc(CA, GAMMA_N), None, "get_doc")
    eq(sm.get_value(CA, "name", GAMMA_N), {}, "get_value")
    eq(sm.get_list(CA, fields=["name"], filters={"name": GAMMA_N}), [], "get_list")


@check("delete through a System Manager's password session")
def _():
    c = state.get("sm_session")
    assert c is not None, "no System Manager session"
    eq(c.delete(CA, PAGE[0]), None, "delete")
    eq(sm.get_value(CA, "name", PAGE[0]), {}, "gone")


@check("delete of a missing document returns None (Frappe's 404 carries no exc)")
def _():
    eq(admin.delete(CA, "doesnotexist"), None, "delete")


@check("logout of the Administrator's session")
def _():
    admin.logout()
    frappe_error(lambda: admin.get_list(CA), "frappe.exceptions.PermissionError")


print(f"summary: {passed} ok, {failed} failing", flush=True)
sys.exit(1 if failed else 0)
