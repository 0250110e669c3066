#!/usr/bin/env python3
"""What authorisation adds to an API request, on a private daemon root.

  bench/auth.py [--rounds N] [--bin DIR]

condod says in each answer's `Server-Timing` header how long its access layer took: `auth` is
authentication (the token's SHA-256 and its row) plus authorisation (the route's role and the
owner of the resource the path names), `audit` the audit row of a change. This benchmark sends
the same reads, alternating A B A B …:

  A  a tenant operator's token (the whole check: token lookup, role, owner of the resource)
  B  root on the unix socket without a token (the peer's uid; the same role and owner check)

for three routes whose path names a tenant's resource or a listing, and prints per route the
median `auth` time of A and of B, the medians of the whole round trip and their difference.
The target: authorisation adds at most 0.2 ms to a request.

Run as root. Binaries as for bench/manager.py (built unless --bin DIR holds them).
"""
import argparse, http.client, json, os, socket, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manager  # noqa: E402  (the daemon and build helpers)


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket."""

    def __init__(self, path):
        super().__init__("condod")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def request(sock, method, path, body=None, token=None):
    """One request on a new connection: status, body, the Server-Timing entries, seconds."""
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    t0 = time.perf_counter()
    c = UnixConnection(sock)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    took = time.perf_counter() - t0
    timing = {}
    for part in (r.getheader("server-timing") or "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            timing[name] = float(dur)
    return r.status, data, timing, took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--bin", help="directory with condod, condo, condo-monitor(-watch), condo-oci")
    a = ap.parse_args()
    with manager.daemon(a.bin or manager.build()) as (d, _):
        sock = d.sock
        d.json("POST", "/v1/tenants", {"name": "acme"}, want=201)
        d.json("POST", "/v1/users", {"name": "ann", "tenant": "acme", "role": "operator"}, want=201)
        tok = d.json("POST", "/v1/tokens", {"user": "ann", "tenant": "acme"}, want=201)["secret"]
        st, b, _, _ = request(sock, "POST", "/v1/volumes", {"name": "data"}, tok)
        assert st == 201, b
        routes = ["/v1/containers?all=true", "/v1/volumes/data", "/v1/users/ann?tenant=acme"]
        # Warm up both paths (SQLite's page cache, prepared statements).
        for p in routes:
            for _ in range(50):
                for t in (tok, None):
                    st, b, tm, _ = request(sock, "GET", p, token=t)
                    assert st == 200, (p, st, b)
                    assert "auth" in tm, f"no Server-Timing auth entry on {p}"
        print(f"{a.rounds} rounds per route, A (tenant token) and B (root peer) alternating")
        print(f"{'route':32} {'auth A':>9} {'auth B':>9} {'total A':>9} {'total B':>9} {'A-B':>8}")
        worst = 0.0
        for p in routes:
            auth = {True: [], False: []}
            total = {True: [], False: []}
            for _ in range(a.rounds):
                for with_token in (True, False):
                    st, b, tm, took = request(sock, "GET", p, token=tok if with_token else None)
                    assert st == 200, (p, st, b)
                    auth[with_token].append(tm["auth"])
                    total[with_token].append(took * 1e3)
            m = {k: statistics.median(v) for k, v in auth.items()}
            t = {k: statistics.median(v) for k, v in total.items()}
            worst = max(worst, m[True])
            print(f"{p:32} {m[True]:8.3f}  {m[False]:8.3f}  {t[True]:8.3f}  {t[False]:8.3f}  {t[True] - t[False]:7.3f}   ms")
        verdict = "holds" if worst <= 0.2 else "MISSED"
        print(f"largest median auth time with a token: {worst:.3f} ms (target 0.2 ms: {verdict})")


if __name__ == "__main__":
    sys.exit(main())
