#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds are a few valid (and a few nearly valid) inputs of each kind; the fuzzer mutates them.
Run from anywhere: python3 fuzz/seeds/make.py. Only the standard library is used.
"""
import gzip
import io
import json
import os
import struct
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")
# The layer_unpack harness keeps its marker here (see fuzz_targets/layer_unpack.rs).
LAYER_BASE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "condo-fuzz-layer")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def js(v):
    return json.dumps(v, indent=1)


# ---- oci_config -------------------------------------------------------------------------
PROCESS = {
    "terminal": False,
    "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"],
    },
    "rlimits": [
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
        {"type": "RLIMIT_NPROC", "hard": 512, "soft": 256},
    ],
    "noNewPrivileges": True,
    "oomScoreAdj": 100,
}
SECCOMP = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    "syscalls": [
        {"names": ["read", "write", "exit_group", "openat", "close"], "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}],
        },
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
        {"names": ["no_such_call"], "action": "SCMP_ACT_LOG"},
    ],
}
RESOURCES = {
    "devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 136, "access": "rw"},
    ],
    "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 128},
    "blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
    },
    "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "unified": {"memory.high": "200000000"},
}
FULL = {
    "ociVersion": "1.2.0",
    "process": PROCESS,
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "box",
    "domainname": "example",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/data", "type": "bind", "source": "/srv/data",
         "options": ["rbind", "ro", "nodev", "rprivate", "idmap"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["tmpcopyup", "noexec", "rw", "nr_inodes=1k", "X-mount.mkdir"]},
    ],
    "hooks": {
        "createRuntime": [{"path": "/usr/bin/true", "args": ["true"], "timeout": 5}],
        "poststop": [{"path": "/bin/echo", "env": ["A=b"]}],
    },
    "annotations": {"org.example": "x"},
    "linux": {
        "namespaces": [{"type": t} for t in
                       ["pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time"]],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 0}},
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                     "fileMode": 438, "uid": 0, "gid": 0}],
        "cgroupsPath": "/condo/box",
        "resources": RESOURCES,
        "rootfsPropagation": "rslave",
        "seccomp": SECCOMP,
        "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"},
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "",
        "personality": {"domain": "LINUX32"},
    },
}
put("oci_config", "full.json", js(FULL))
put("oci_config", "minimal.json",
    js({"ociVersion": "1.0.2", "process": {"args": ["/bin/true"], "cwd": "/"},
        "root": {"path": "/"}}))
notify = json.loads(json.dumps(FULL))
notify["linux"]["seccomp"]["listenerPath"] = "/run/seccomp.sock"
notify["linux"]["seccomp"]["syscalls"].append({"names": ["mount"], "action": "SCMP_ACT_NOTIFY"})
put("oci_config", "notify.json", js(notify))
bad = json.loads(json.dumps(FULL))
bad["linux"]["namespaces"].append({"type": "pid"})
bad["process"]["rlimits"][0]["soft"] = 4096
put("oci_config", "bad.json", js(bad))

# ---- cgroup_resources -------------------------------------------------------------------
put("cgroup_resources", "full.json", js(RESOURCES))
put("cgroup_resources", "update.json",
    js({"memory": {"limit": -1, "swap": -1}, "cpu": {"weight": 100, "idle": 0,
        "realtimeRuntime": 0, "burst": 1000}, "pids": {"limit": -1}}))
put("cgroup_resources", "devices.json",
    js({"devices": [{"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"},
                    {"allow": False, "type": "a"},
                    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rw"}]}))
put("cgroup_resources", "cpuset.json",
    js({"cpu": {"cpus": "0-1,1", "mems": "0"}, "rdma": {"mlx5_0": {"hcaHandles": 3}},
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}}))

# ---- image_manifest ---------------------------------------------------------------------
D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "0123456789abcdef" * 4
put("image_manifest", "manifest.json", js({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 7023},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 32654},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": D1, "size": 16724,
         "annotations": {"org.opencontainers.image.title": "l2"}},
    ],
}))
put("image_manifest", "docker.json", js({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": D2, "size": 1},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": D1, "size": 2}],
}))
put("image_manifest", "index.json", js({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D1, "size": 7143,
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2, "size": 7682,
         "platform": {"architecture": "amd64", "os": "linux"},
         "annotations": {"org.opencontainers.image.ref.name": "1.0"}},
    ],
}))
put("image_manifest", "config.json", js({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/",
               "ExposedPorts": {"80/tcp": {}}, "User": "1000:1000"},
    "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    "history": [{"created_by": "x"}],
}))
put("image_manifest", "digest.txt", D2)
put("image_manifest", "ref1.txt", "busybox")
put("image_manifest", "ref2.txt", "registry.example:5000/team/app:v1.2@" + D1)
put("image_manifest", "ref3.txt", "localhost/a/b/c:latest")

# ---- dns_message ------------------------------------------------------------------------
def name(n):
    out = b""
    for l in n.split("."):
        out += bytes([len(l)]) + l.encode()
    return out + b"\0"


def query(qid, n, qtype):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name(n) + struct.pack(">HH", qtype, 1)


put("dns_message", "query_a.bin", query(7, "web.condo", 1))
put("dns_message", "query_aaaa.bin", query(0xbeef, "Db.Example.com", 28))
ans = struct.pack(">HHHHHH", 7, 0x8180, 1, 2, 0, 0) + name("web.condo") + struct.pack(">HH", 1, 1)
ans += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([10, 88, 0, 2])
ans += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 3) + b"\x01a\x00"
ans += b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + bytes(range(16))
put("dns_message", "answer.bin", ans)
put("dns_message", "header_only.bin", struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0))

# ---- layer_unpack -----------------------------------------------------------------------
def tar_bytes(members, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for m in members:
            kind, path = m[0], m[1]
            ti = tarfile.TarInfo(path)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 0
            data = None
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "file":
                data = m[2]
                ti.size, ti.mode = len(data), 0o644
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, m[2]
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, m[2]
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, m[2], m[3]
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "pax":
                ti.pax_headers = m[2]
                data = m[3]
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


plain = tar_bytes([
    ("dir", "./"), ("dir", "etc"), ("file", "etc/hostname", b"box\n"),
    ("sym", "bin", "usr/bin"), ("dir", "usr/bin"), ("file", "usr/bin/sh", b"#!sh\n"),
    ("hard", "usr/bin/ash", "usr/bin/sh"), ("fifo", "run.fifo"), ("chr", "null", 1, 3),
])
put("layer_unpack", "plain.tar", plain)
put("layer_unpack", "plain.tar.gz", gzip.compress(plain, mtime=0))
put("layer_unpack", "whiteouts.tar", tar_bytes([
    ("file", "etc/.wh.hostname", b""), ("file", "etc/.wh..wh..opq", b""),
    ("file", ".wh.file", b""), ("dir", "var"), ("file", "var/.wh..wh..opq", b""),
]))
# Escapes every layer must refuse: by "..", by absolute symlinks and hard links to the
# harness's marker, by a symlinked parent directory.
put("layer_unpack", "escape.tar", tar_bytes([
    ("sym", "up", "../../marker"), ("file", "up/evil", b"x"),
    ("sym", "abs", LAYER_BASE + "/marker"), ("file", "abs/evil", b"x"),
    ("hard", "h", LAYER_BASE + "/marker/file"), ("hard", "h2", "../../marker/file"),
    ("file", "../evil", b"x"), ("file", "/evil", b"x"),
    ("file", "abs/.wh.file", b""), ("file", "up/.wh..wh..opq", b""),
]))
put("layer_unpack", "pax.tar", tar_bytes([
    ("pax", "a", {"path": "long/" + "d" * 120 + "/file", "SCHILY.xattr.user.k": "v"}, b"data"),
], fmt=tarfile.PAX_FORMAT))

# ---- template_toml ----------------------------------------------------------------------
put("template_toml", "site.toml", '''name = "site"
version = "2"
description = "a web site"
from = "debian:bookworm"
packages = ["nginx", "curl"]
run = ["echo {{ title }} > /etc/motd", "useradd -m {{ user }}"]
workdir = "/srv"
user = "www-data"
expose = [80, 443]
volumes = ["/var/lib/site"]
first_start = ["/usr/local/bin/setup"]

[env]
LANG = "C.UTF-8"

[parameters.title]
type = "string"
required = true

[parameters.user]
type = "string"
default = "web"

[parameters.port]
type = "int"
default = 8080

[parameters.debug]
type = "bool"
default = "yes"

[[files]]
src = "page.html"
dest = "/var/www/html/index.html"
render = true

[[files]]
src = "conf/app.conf"
dest = "/etc/app.conf"
mode = 0o600
owner = "root:root"
render = true

[services.web]
command = "nginx -g 'daemon off;'"

[resources]
memory = "512M"
disk = "2G"
''')
put("template_toml", "scratch.toml", '''name = "tiny"
version = "1.0"
from = "scratch"

[[files]]
src = "blob.bin"
dest = "/blob"
''')
put("template_toml", "busybox.toml", '''name = "bb"
version = "1"
from = "host-busybox"
run = ["echo {{ x }}{{ {{y}} }}"]
''')
put("template_toml", "size.txt", "512MiB")

# ---- api_body ---------------------------------------------------------------------------
put("api_body", "create_full.json", js({
    "name": "web", "image": "nginx:1", "command": ["nginx", "-g", "daemon off;"],
    "env": ["A=1", "PATH=/bin"], "workdir": "/srv", "user": "33:33", "hostname": "web",
    "tty": True, "read_only": True,
    "limits": {"memory": 67108864, "cpus": 0.5, "pids": 100, "disk": 134217728},
    "labels": {"tier": "front"}, "restart": {"policy": "on-failure", "max_retries": 3},
    "network": "none", "stop_signal": "SIGQUIT", "stop_timeout": 5,
    "volumes": ["/srv/data:/data:ro"],
    "healthcheck": {"command": ["wget", "-q", "localhost"], "interval": 5, "timeout": 2, "retries": 3},
}))
put("api_body", "create_template.json", js({
    "template": "wordpress", "params": {"site": "blog", "password": "x"}, "userns": "host",
    "privileged": True,
}))
put("api_body", "update.json", js({"limits": {"memory": 33554432, "cpus": 1.5}, "restart": {"policy": "always"}}))
put("api_body", "exec.json", js({"command": ["sh", "-c", "id"], "env": ["X=1"], "tty": True, "size": [24, 80], "user": "0", "workdir": "/"}))
put("api_body", "rename.json", js({"name": "new-name"}))
put("api_body", "snapshot.json", js({"name": "s1"}))
put("api_body", "build.json", js({"name": "busybox"}))
put("api_body", "policy.txt", "on-failure:3")
put("api_body", "restart_count.json", js({"restart": {"policy": "no", "max_retries": 3}}))
put("api_body", "rebase.json", js({"template": "wordpress", "params": {"site": "blog"}, "timeout": 60}))
put("api_body", "pull.json", js({"reference": "docker.io/library/busybox:1.36", "plain_http": False, "username": "u", "password": "p"}))
put("api_body", "network.json", js({"name": "web", "subnet": "10.89.3.0/24", "gateway": "10.89.3.1", "subnet6": "fd00::/64", "internal": True, "mtu": 1400}))
put("api_body", "tenant.json", js({"name": "acme", "quota": {"containers": 10, "memory": 1073741824, "cpus": 2.5, "disk": 10737418240, "networks": 2, "bandwidth": 100000000, "monthly_traffic": 1000000000000}}))
put("api_body", "user.json", js({"name": "gina", "tenant": "acme", "role": "tenant-owner"}))
put("api_body", "role.json", js({"role": "read-only"}))
put("api_body", "token.json", js({"user": "gina", "tenant": "acme", "name": "ci", "expires_in": 86400}))
put("api_body", "volume.json", js({"name": "data", "labels": {"app": "db"}}))
