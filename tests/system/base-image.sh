#!/usr/bin/env bash
# Makes the Debian bookworm base image that the Dockerfile and the system
# tests build FROM. No registry is reachable here, so the image is made with
# debootstrap from the Debian mirror apt already uses and imported into
# podman under the name a registry pull would give it. Does nothing when the
# image exists.
#   tests/system/base-image.sh [IMAGE]     (default docker.io/library/debian:bookworm)
set -euo pipefail
image=${1:-docker.io/library/debian:bookworm}
if podman image exists "$image"; then
  exit 0
fi
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/importwatch-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm from $mirror (a few minutes, once)" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# Keep the image small and like the registry's: no apt lists or caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base-image: $image ready" >&2
