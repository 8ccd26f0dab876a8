"""`bench/run --keepalive`: the keep-alive job refreshing 10,000 due connections against the
local test provider (tests/provider), while user GETs are timed before and during the job.

One service on MariaDB. Before: the job is off and user GETs are timed. During: the service is
restarted with the job on (1 s interval) and the same GETs are timed until the provider has
answered every refresh. The load is Python threads with keep-alive connections (no wrk needed),
so compare the two columns with each other, not with the wrk figures above.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

START = "<!-- keepalive -->"
END = "<!-- /keepalive -->"
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret"


def start_provider(root, redirect_uri):
    cfg = {"rotateRefreshToken": False,
           "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]}]}
    proc = subprocess.Popen(["node", os.path.join(root, "tests", "provider", "provider.js"), "--port", "0"],
                            env=dict(os.environ, PROVIDER_CONFIG=json.dumps(cfg)),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        raise RuntimeError(f"provider did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=600) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


class Load:
    """`threads` clients, each GETting `paths` in turn over one keep-alive connection."""

    def __init__(self, port, auth, paths, threads=8):
        self.port, self.auth, self.paths, self.threads = port, auth, paths, threads
        self.stop = threading.Event()
        self.lat, self.errors = [], 0
        self.lock = threading.Lock()

    def _run(self, i):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        k = i
        while not self.stop.is_set():
            path = self.paths[k % len(self.paths)]
            k += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": self.auth})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except Exception:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                ok = False
            ms = (time.perf_counter() - t0) * 1000
            with self.lock:
                if ok:
                    self.lat.append(ms)
                else:
                    self.errors += 1

    def __enter__(self):
        self.workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        self.t0 = time.perf_counter()
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for w in self.workers:
            w.join()
        self.secs = time.perf_counter() - self.t0

    def result(self):
        lat = sorted(self.lat)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
        return dict(requests=len(lat), rps=len(lat) / self.secs, p50=pick(0.50), p99=pick(0.99), errors=self.errors)


def seed(svc, db, mysql, app, tokens, idle_days=60):
    """Token Caches `<app>-seed<i>@example.com` holding the minted refresh tokens, idle `idle_days`."""
    from cryptography.fernet import Fernet
    key = json.load(open(svc.env["CONNECTED_APPS_SITE_CONFIG"]))["encryption_key"]
    f = Fernet(key.encode())
    then = (datetime.now() - timedelta(days=idle_days)).strftime("%Y-%m-%d %H:%M:%S.%f")
    out = ["BEGIN;"]
    for k in range(0, len(tokens), 500):
        docs, auths = [], []
        for i, rt in enumerate(tokens[k:k + 500], start=k):
            name = f"{app}-seed{i}@example.com"
            docs.append(f"('{name}','{then}','{then}','Administrator','Administrator',0,0,'seed{i}@example.com','{app}',"
                        f"'Bench Provider','*****','*****',3600,'Bearer')")
            auths.append(f"('Token Cache','{name}','refresh_token','{f.encrypt(rt.encode()).decode()}',1)")
        out.append("INSERT INTO `tabToken Cache` (name,creation,modified,modified_by,owner,docstatus,idx,user,"
                   "connected_app,provider_name,access_token,refresh_token,expires_in,token_type) VALUES "
                   + ",".join(docs) + ";")
        out.append("INSERT INTO `__Auth` (doctype,name,fieldname,password,encrypted) VALUES " + ",".join(auths) + ";")
    out.append("COMMIT;")
    subprocess.run(mysql + [db], input="\n".join(out), text=True, check=True)


def run(root, make_service, mysql, work, n=10_000, seconds=20, concurrency=4, binary_label="release"):
    db = "bench_ca_keepalive"
    subprocess.run(mysql + ["-e", f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} "
                                  "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"], check=True)
    url = f"mysql://root@127.0.0.1:3306/{db}"
    off = {"CONNECTED_APPS_KEEPALIVE_ENABLED": "false"}
    svc = make_service(url, work, off)
    svc.cli("migrate")
    auth = "token " + svc.cli("user", "api-key", "Administrator")
    svc.start()
    headers = {"Authorization": auth}
    app = call("POST", svc.url + "/api/resource/Connected%20App", {
        "provider_name": "Bench Provider", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "scopes": [{"scope": "openid"}, {"scope": "email"}, {"scope": "profile"}]}, headers)["data"]
    provider, issuer = start_provider(root, app["redirect_uri"])
    try:
        call("PUT", f"{svc.url}/api/resource/Connected%20App/{app['name']}", {
            "authorization_uri": issuer + "/auth", "token_uri": issuer + "/token"}, headers)
        t0 = time.perf_counter()
        tokens = call("POST", issuer + "/__test/refresh_tokens", {"client_id": CLIENT_ID, "count": n})["refresh_tokens"]
        seed(svc, db, mysql, app["name"], tokens)
        print(f"  keepalive: minted and seeded {n:,} connections in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        paths = [f"/api/resource/Connected%20App/{app['name']}",
                 f"/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={app['name']}"]
        with Load(svc.port, auth, paths) as before:
            time.sleep(seconds)
        before = before.result()
        svc.stop()
        call("POST", issuer + "/__test/reset", {})
        svc = make_service(url, work, {"CONNECTED_APPS_KEEPALIVE_ENABLED": "true",
                                       "CONNECTED_APPS_KEEPALIVE_INTERVAL_SECS": "1",
                                       "CONNECTED_APPS_KEEPALIVE_CONCURRENCY": str(concurrency)})
        svc.start()
        with Load(svc.port, auth, paths) as during:
            started = None
            while True:
                stats = call("GET", issuer + "/__test/stats")
                if started is None and stats["refresh_requests"] > 0:
                    started = time.perf_counter()
                if stats["refresh_requests"] >= n:
                    break
                time.sleep(0.2)
            job_secs = time.perf_counter() - (started or time.perf_counter())
        during = during.result()
        stats = call("GET", issuer + "/__test/stats")
        rss = svc.peak_rss_mb()
        svc.stop()
    finally:
        provider.terminate()
        provider.wait(timeout=10)
    return dict(n=n, before=before, during=during, job_secs=job_secs, stats=stats, rss=rss,
                concurrency=concurrency, binary=binary_label)


def section(r, machine):
    b, d, s = r["before"], r["during"], r["stats"]
    lines = [START, "## Keep-alive: 10,000 due connections refreshed while users read (`bench/run --keepalive`)", "",
             f"Written on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with the {r['binary']} build. "
             f"Machine: {machine}. One service on MariaDB (pool 16), the test provider (tests/provider, oidc-provider "
             f"on Node.js, no rotation) on loopback; {r['n']:,} connections idle for 60 days, seeded by SQL. Users: 8 "
             "Python threads with keep-alive connections GETting one Connected App and `has_token` in turns, first "
             "with the job off, then while the job (every 1 s, "
             f"`keepalive_concurrency` {r['concurrency']}) refreshes every connection. The provider, MariaDB, the "
             "service and the load share the 2 cores.", "",
             "| user GETs | requests/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|",
             f"| before (job off) | {b['rps']:,.0f} | {b['p50']:.2f} | {b['p99']:.2f} | {b['errors']} |",
             f"| during the job | {d['rps']:,.0f} | {d['p50']:.2f} | {d['p99']:.2f} | {d['errors']} |", "",
             f"The job refreshed {s['refresh_requests']:,} connections in **{r['job_secs']:.1f} s** "
             f"({s['refresh_requests'] / max(r['job_secs'], 1e-9):,.0f} refreshes/s), each once "
             f"({s['invalid_grant']} `invalid_grant`), with at most **{s['max_token_in_flight']}** token requests in "
             f"flight at the provider. Peak RSS of the service: {r['rss']:.1f} MB.", "", END]
    return "\n".join(lines)


def write(root, text):
    path = os.path.join(root, "BENCHMARKS.md")
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if START in old:
        old = old[:old.index(START)] + text + old[old.index(END) + len(END):]
    else:
        old = old.rstrip("\n") + "\n\n" + text + "\n"
    open(path, "w").write(old)
