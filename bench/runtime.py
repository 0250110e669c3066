#!/usr/bin/env python3
"""Side-by-side benchmark of OCI runtimes: condo-oci, crun, runc (A B C A B C ...).

Measures, per runtime: `run` of /bin/true (median, p90, peak RSS of the runtime process),
create+start+wait+delete, containers per second sequentially and 50 at once, each with and
without a network namespace; and the floor (`unshare -m -p -u -i -n --fork /bin/true`).

Run as root. It re-executes itself inside a private mount namespace where
/sys/fs/cgroup/unified is unmounted (crun refuses hybrid cgroups), and also measures condo-oci
on the plain hybrid host. Usage: bench/runtime.py [--rounds N] [--condo PATH]
"""
import argparse, ctypes, json, os, shutil, statistics, subprocess, sys, tempfile, time

PR_SET_CHILD_SUBREAPER = 36

def sh(*a, **k):
    return subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **k)

def make_bundle(root, netns, condo):
    os.makedirs(root, exist_ok=True)
    subprocess.run([os.path.join(os.path.dirname(__file__), "..", "tests/support/mkbundle"), root, "/bin/true"],
                   check=True, env={**os.environ, "CONDO_OCI": condo}, stdout=subprocess.DEVNULL)
    cfg = json.load(open(os.path.join(root, "config.json")))
    # Older peers only know 1.0.x documents; the fields used here are the same.
    cfg["ociVersion"] = "1.0.2"
    ns = [n for n in cfg["linux"]["namespaces"] if netns or n["type"] != "network"]
    cfg["linux"]["namespaces"] = ns
    cfg["process"].pop("rlimits", None)
    json.dump(cfg, open(os.path.join(root, "config.json"), "w"))

LAUNCH = None

def build_launcher(work):
    """A tiny static launcher reports the runtime's own peak RSS (a fork of Python would not)."""
    global LAUNCH
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rsslaunch.c")
    LAUNCH = os.path.join(work, "rsslaunch")
    subprocess.run(["gcc", "-O2", "-static", "-o", LAUNCH, src], check=True)

def timed(argv, rss=False):
    r, w = os.pipe()
    argv = [LAUNCH, str(w), *argv] if rss else argv
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         pass_fds=(w,) if rss else ())
    _, status, _ = os.wait4(p.pid, 0)
    t = (time.perf_counter_ns() - t0) / 1e6
    os.close(w)
    kib = int(os.read(r, 64).decode() or 0) if rss else 0
    os.close(r)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {p.stderr.read().decode()[-500:]}")
    return t, kib

def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
        except ChildProcessError:
            return

class Runtime:
    def __init__(self, name, binary, root):
        self.name, self.binary, self.root = name, binary, root
        self.n = 0

    def cmd(self, *a):
        return [self.binary, "--root", self.root, *a]

    def next_id(self):
        self.n += 1
        return f"b{os.getpid()}-{self.n}"

    def run(self, bundle):
        return timed(self.cmd("run", "--bundle", bundle, self.next_id()), rss=True)

    def lifecycle(self, bundle):
        cid = self.next_id()
        t0 = time.perf_counter_ns()
        pidfile = os.path.join(self.root, cid + ".pid")
        sh(*self.cmd("create", "--bundle", bundle, "--pid-file", pidfile, cid))
        pid = int(open(pidfile).read())
        sh(*self.cmd("start", cid))
        # We are a subreaper: the init is ours to wait for once `create` has exited.
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            while os.path.exists(f"/proc/{pid}"):
                time.sleep(0.0002)
        sh(*self.cmd("delete", cid))
        os.unlink(pidfile)
        return (time.perf_counter_ns() - t0) / 1e6

    def parallel(self, bundle, n):
        t0 = time.perf_counter_ns()
        ps = [subprocess.Popen(self.cmd("run", "--bundle", bundle, self.next_id()), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
        codes = [p.wait() for p in ps]
        if any(codes):
            raise RuntimeError(f"{self.name}: {sum(1 for c in codes if c)} of {n} parallel runs failed")
        return (time.perf_counter_ns() - t0) / 1e9

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def measure(runtimes, bundles, rounds, floor):
    res = {}
    for label, bundle in bundles.items():
        for r in runtimes:
            res[(r.name, label)] = {"run": [], "rss": [], "life": []}
        res[("floor", label)] = {"run": [], "rss": [], "life": []}
        for i in range(rounds):
            for r in runtimes:
                t, rss = r.run(bundle)
                res[(r.name, label)]["run"].append(t)
                res[(r.name, label)]["rss"].append(rss)
                res[(r.name, label)]["life"].append(r.lifecycle(bundle))
            if floor:
                flags = ["-m", "-p", "-u", "-i"] + (["-n"] if label == "netns" else [])
                t, _ = timed(["unshare", *flags, "--fork", "/bin/true"])
                res[("floor", label)]["run"].append(t)
        for r in runtimes:
            secs = r.parallel(bundle, 50)
            res[(r.name, label)]["par"] = 50 / secs
    return res

def report(res, rounds):
    print(f"{'runtime':<22}{'ns':<8}{'run med':>9}{'p90':>8}{'RSS MiB':>9}{'c+s+w+d':>9}{'seq/s':>8}{'50x/s':>8}")
    for (name, label), v in res.items():
        if not v["run"]:
            continue
        med = statistics.median(v["run"])
        line = f"{name:<22}{label:<8}{med:>8.2f} {pct(v['run'], 90):>7.2f}"
        line += f"{(max(v['rss']) / 1024 if v['rss'] else 0):>9.2f}" if v["rss"] else f"{'':>9}"
        line += f"{statistics.median(v['life']):>8.2f} " if v["life"] else f"{'':>9}"
        line += f"{1000 / med:>8.1f}"
        line += f"{v.get('par', 0):>8.1f}" if "par" in v else ""
        print(line)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--condo", help="condo-oci binary (default: build it with scripts/build-oci)")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not a.condo:
        here = os.path.dirname(os.path.abspath(__file__))
        a.condo = subprocess.run([os.path.join(here, "..", "scripts/build-oci")], check=True,
                                 stdout=subprocess.PIPE, text=True).stdout.strip()
    condo = os.path.abspath(a.condo)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    work = tempfile.mkdtemp(prefix="condo-bench-")
    build_launcher(work)
    try:
        bundles = {}
        for label, netns in (("netns", True), ("nonet", False)):
            b = os.path.join(work, label)
            make_bundle(b, netns, condo)
            bundles[label] = b
        if not a.inner:
            print(f"# {time.strftime('%Y-%m-%d')} rounds={a.rounds} host cgroups: hybrid (condo-oci only)")
            rt = [Runtime("condo-oci (hybrid)", condo, os.path.join(work, "state-condo-h"))]
            report(measure(rt, bundles, a.rounds, False), a.rounds)
            sys.stdout.flush()
            # Everything else inside a private mount namespace without the unified hierarchy.
            os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                                   f"umount /sys/fs/cgroup/unified 2>/dev/null; exec {sys.executable} {os.path.abspath(__file__)} --inner --rounds {a.rounds} --condo {condo}"])
        print(f"# private mount namespace, /sys/fs/cgroup/unified unmounted (v1 only)")
        rts = [Runtime("condo-oci", condo, os.path.join(work, "s-condo")),
               Runtime("crun", shutil.which("crun"), os.path.join(work, "s-crun")),
               Runtime("runc", shutil.which("runc"), os.path.join(work, "s-runc"))]
        res = measure(rts, bundles, a.rounds, True)
        report(res, a.rounds)
        for label in bundles:
            c = statistics.median(res[("condo-oci", label)]["run"])
            k = statistics.median(res[("crun", label)]["run"])
            r = statistics.median(res[("runc", label)]["run"])
            rc = max(res[("condo-oci", label)]["rss"]) / max(res[("crun", label)]["rss"])
            print(f"ratio {label}: condo-oci/crun run = {c / k:.2f}, condo-oci/runc = {c / r:.2f}, peak RSS condo-oci/crun = {rc:.2f}")
    finally:
        reap_all()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
