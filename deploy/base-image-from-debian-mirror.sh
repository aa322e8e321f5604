#!/usr/bin/env bash
# Build the Dockerfile's base image, debian:bookworm-slim, from a Debian mirror
# with debootstrap, for machines that reach a Debian mirror but not Docker Hub.
# Run as root; needs debootstrap (apt-get install debootstrap).
#
#   deploy/base-image-from-debian-mirror.sh [MIRROR]   # default http://deb.debian.org/debian
#
# EXTRA_CA_DIR=/usr/local/share/ca-certificates adds those *.crt files to the
# image's trust store and points pip at it: for networks whose HTTPS goes
# through an inspecting proxy with its own CA.
set -euo pipefail
mirror=${1:-http://deb.debian.org/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror"
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
if [ -n "${EXTRA_CA_DIR:-}" ]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp "$EXTRA_CA_DIR"/*.crt "$root/usr/local/share/ca-certificates/"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$root/etc/pip.conf"
fi
tar -C "$root" -c . | docker import - debian:bookworm-slim
echo "debian:bookworm-slim built from $mirror"
