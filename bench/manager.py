#!/usr/bin/env python3
"""Benchmarks of the manager (condod, condo, condo-monitor) on a private daemon root.

  bench/manager.py run [--rounds N]     `condo run --rm IMAGE true` end to end against
                                        `condo-oci run` of the same rootfs and config.json,
                                        alternating A B A B; prints the medians and the ratio.
  bench/manager.py mem GROUP=EXE[:MATCH]...
                                        for bench/peers-memory.sh: per group, the processes
                                        whose executable is EXE (and whose command line holds
                                        MATCH): count, summed PSS and RSS, median VmHWM and PSS.
  bench/manager.py scale [--count N]    N idle containers (`sleep`) at once: the time to list
                                        them through the API (median of 50 GETs), and the
                                        host-side memory per container: every monitor's PSS
                                        plus condod's, divided by N; each monitor's peak RSS
                                        (VmHWM) and PSS.

Run as root. Binaries: release condod and condo, the static monitor (scripts/build-static) and
condo-oci (scripts/build-oci), built unless --bin DIR holds them all. Nothing is left behind:
the containers are deleted and the daemon stopped, whatever happens.
"""
import argparse, contextlib, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def build():
    """The binaries, in one directory (links to the build outputs)."""
    env = dict(os.environ)
    target = env.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "condod", "-p", "condo"],
                   cwd=REPO, check=True)
    mon = subprocess.run([os.path.join(REPO, "scripts/build-static"), "condo-monitor"], cwd=REPO,
                         check=True, stdout=subprocess.PIPE, text=True,
                         env={**env, "EXTRA_RUSTFLAGS": "-C relocation-model=static"}).stdout.strip()
    oci = subprocess.run([os.path.join(REPO, "scripts/build-oci")], cwd=REPO, check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    d = tempfile.mkdtemp(prefix="condo-bench-bin.")
    for src in [os.path.join(target, "release", "condod"), os.path.join(target, "release", "condo"),
                mon, mon + "-watch", oci]:
        os.symlink(src, os.path.join(d, os.path.basename(src)))
    return d


class Daemon:
    """condod on a temporary root."""

    def __init__(self, bindir, work):
        self.bindir, self.root = bindir, os.path.join(work, "root")
        self.sock = os.path.join(self.root, "condod.sock")
        log = open(os.path.join(work, "condod.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(bindir, "condod"), "--root", self.root, "--log", "warn",
                                      "--monitor", os.path.join(bindir, "condo-monitor")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        for _ in range(500):
            try:
                if self.req("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("condod did not come up")

    def req(self, method, path, body=None):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
        if data:
            head += "Content-Type: application/json\r\n"
        s.sendall(head.encode() + b"\r\n" + data)
        raw = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            raw += chunk
        s.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        if b"transfer-encoding: chunked" in head.lower():
            out = b""
            while rest:
                n, _, rest = rest.partition(b"\r\n")
                n = int(n, 16)
                if n == 0:
                    break
                out, rest = out + rest[:n], rest[n + 2:]
            rest = out
        return status, rest

    def json(self, method, path, body=None, want=200):
        st, b = self.req(method, path, body)
        if st != want:
            raise RuntimeError(f"{method} {path}: {st} {b[:300]!r}")
        return json.loads(b) if b else None

    def condo(self, *args, **kw):
        return subprocess.run([os.path.join(self.bindir, "condo"), *args],
                              env={**os.environ, "CONDO_HOST": f"unix://{self.sock}"}, **kw)

    def stop(self):
        try:
            for c in self.json("GET", "/v1/containers?all=true"):
                self.req("DELETE", f"/v1/containers/{c['id']}?force=true")
        finally:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait()


def busybox_rootfs(path):
    os.makedirs(path)
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"]:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(path, "bin/busybox"))
    for a in ["sh", "sleep", "true"]:
        os.symlink("busybox", os.path.join(path, "bin", a))


def median_p90(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1]


def bench_run(d, work, rounds):
    tar = os.path.join(work, "bb.tar")
    subprocess.run(["bash", os.path.join(REPO, "tests/engines/mkimage.sh"), tar, "bb:1"], check=True,
                   stdout=subprocess.DEVNULL)
    d.condo("import", tar, check=True, stdout=subprocess.DEVNULL)
    # condo-oci runs the very config.json condod wrote, on the same mounted rootfs.
    ref = d.json("POST", "/v1/containers", {"name": "ref", "image": "bb:1", "command": ["true"]}, 201)
    d.json("POST", f"/v1/containers/{ref['id']}/start")
    d.json("POST", f"/v1/containers/{ref['id']}/wait")
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    shutil.copy(os.path.join(d.root, "containers", ref["id"], "bundle", "config.json"), bundle)
    oci, oci_root = os.path.join(d.bindir, "condo-oci"), os.path.join(work, "oci")
    condo = [os.path.join(d.bindir, "condo"), "run", "--rm", "bb:1", "true"]
    env = {**os.environ, "CONDO_HOST": f"unix://{d.sock}"}
    times = {"condo run --rm": [], "condo-oci run": []}
    for i in range(rounds + 3):
        for name in times:
            argv = condo if name.startswith("condo run") else \
                [oci, "--root", oci_root, "run", "--bundle", bundle, f"b{i}"]
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            t = (time.perf_counter() - t0) * 1000
            if i >= 3:  # warm-up rounds are not counted
                times[name].append(t)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} rounds={rounds} load={os.getloadavg()[0]:.1f}")
    for name, xs in times.items():
        m, p = median_p90(xs)
        print(f"{name:16} median {m:7.2f} ms  p90 {p:7.2f} ms")
    a, b = (statistics.median(times[k]) for k in times)
    print(f"ratio condo run --rm / condo-oci run = {a / b:.2f}")


def status_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pss_kib(pid):
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def procs(exe, match):
    """Pids whose executable's name is `exe` and whose command line holds `match`."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.path.basename(os.readlink(f"/proc/{p}/exe")).replace(" (deleted)", "") != exe:
                continue
            if match and match not in open(f"/proc/{p}/cmdline").read().replace("\0", " "):
                continue
            out.append(int(p))
        except OSError:
            pass
    return out


def mem(groups):
    for g in groups:
        name, _, spec = g.partition("=")
        exe, _, match = spec.partition(":")
        pids = procs(exe, match)
        if not pids:
            print(f"{name}: no process")
            continue
        rows = []
        for p in pids:
            try:
                rows.append((status_kib(p, "VmHWM"), status_kib(p, "VmRSS"), pss_kib(p)))
            except OSError:  # ended meanwhile
                pass
        hwm, rss, pss = ([r[i] for r in rows] for i in range(3))
        pids = rows
        print(f"{name}: {len(pids)} processes, PSS total {sum(pss)} KiB (median {statistics.median(pss)}), "
              f"RSS total {sum(rss)} KiB, VmHWM median {statistics.median(hwm)} KiB max {max(hwm)} KiB")


def bench_scale(d, work, count):
    rootfs = os.path.join(work, "rootfs")
    busybox_rootfs(rootfs)
    t0 = time.perf_counter()
    ids = []
    for i in range(count):
        c = d.json("POST", "/v1/containers", {"name": f"idle{i}", "rootfs": rootfs,
                                              "command": ["sleep", "1000000"]}, 201)
        d.json("POST", f"/v1/containers/{c['id']}/start")
        ids.append(c["id"])
    made = time.perf_counter() - t0
    time.sleep(2)
    lists = []
    for _ in range(53):
        t0 = time.perf_counter()
        st, body = d.req("GET", "/v1/containers")
        lists.append((time.perf_counter() - t0) * 1000)
        assert st == 200 and len(json.loads(body)) == count, body[:200]
    lists = lists[3:]
    monitors = []
    for cid in ids:
        pid = int(open(os.path.join(d.root, "containers", cid, "monitor.pid")).read().split()[0])
        monitors.append((status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS"), pss_kib(pid)))
    daemon = (status_kib(d.proc.pid, "VmRSS"), pss_kib(d.proc.pid))
    hwm = [m[0] for m in monitors]
    pss = [m[2] for m in monitors]
    total = sum(pss) + daemon[1]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} containers={count} load={os.getloadavg()[0]:.1f}")
    print(f"created and started {count} in {made:.1f} s ({made / count * 1000:.1f} ms each)")
    m, p = median_p90(lists)
    print(f"GET /v1/containers ({count} rows): median {m:.2f} ms, p90 {p:.2f} ms")
    print(f"monitor peak RSS (VmHWM): median {statistics.median(hwm)} KiB, max {max(hwm)} KiB")
    print(f"monitor PSS: median {statistics.median(pss)} KiB; condod RSS {daemon[0]} KiB, PSS {daemon[1]} KiB")
    print(f"host-side memory per container (monitors' PSS + condod's PSS) / {count}: "
          f"{total / count:.0f} KiB = {total / count / 1024:.2f} MiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["run", "scale", "mem"])
    ap.add_argument("groups", nargs="*")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--bin", help="directory with condod, condo, condo-monitor(-watch), condo-oci")
    ap.add_argument("--dir", help="where the daemon's root goes (default: the system's temp dir); "
                    "/dev/shm takes the disk's flushes out of the figures")
    a = ap.parse_args()
    if a.what == "mem":
        return mem(a.groups)
    with daemon(a.bin or build(), a.dir) as (d, work):
        if a.what == "run":
            bench_run(d, work, a.rounds)
        else:
            bench_scale(d, work, a.count)


@contextlib.contextmanager
def daemon(bindir, where=None):
    """A condod on a fresh temporary root, and that directory; both gone afterwards."""
    work = tempfile.mkdtemp(prefix="condo-bench.", dir=where)
    # A container's root is an unprivileged id on the host: it must be able to pass through.
    os.chmod(work, 0o711)
    d = Daemon(bindir, work)
    try:
        yield d, work
    finally:
        d.stop()
        subprocess.run(["umount", "-R", os.path.join(work, "root", "storage")], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
