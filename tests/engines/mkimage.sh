#!/usr/bin/env bash
# Writes a busybox image as one tar that is both an OCI image layout and a docker-archive
# (index.json + manifest.json over the same blobs), from the host's /bin/busybox (static):
#   mkimage.sh OUT.tar [NAME:TAG]          (default busybox:latest)
# Every engine loads it: `ctr images import`, `docker load`, `podman load`.
set -euo pipefail
out=$1
ref=${2:-busybox:latest}
name=${ref%%:*}
tag=${ref##*:}
bb=/bin/busybox
[ -x "$bb" ] || { echo "mkimage: $bb is missing (install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || { echo "mkimage: $bb is not static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
  [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"

blobs=$work/image/blobs/sha256
mkdir -p "$blobs"
# Reproducible layer: sorted names, fixed times and owners.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer.tar" .
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar")
mv "$work/layer.tar" "$blobs/$layer"

cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"condo tests/engines/mkimage.sh"}]}
JSON
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$blobs/$config"

cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$layer_size}]}
JSON
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$manifest"

full=$ref
case $name in */*) ;; *) full=docker.io/library/$ref ;; esac
cat > "$work/image/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$manifest_size,"annotations":{"io.containerd.image.name":"$full","org.opencontainers.image.ref.name":"$tag"},"platform":{"architecture":"amd64","os":"linux"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/image/oci-layout"
cat > "$work/image/manifest.json" <<JSON
[{"Config":"blobs/sha256/$config","RepoTags":["$ref"],"Layers":["blobs/sha256/$layer"]}]
JSON

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/image" -cf "$out" .
