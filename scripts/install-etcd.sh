#!/usr/bin/env bash
# Make sure the `etcd` binary (3.4+) is on PATH for the producer-group tests and `da devnet
# --producers 3`: install Debian's etcd-server when it is missing and we run as root; otherwise
# say which package to install. Never fails the build: the group tests skip without etcd.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-etcd: etcd missing, installing the Debian package etcd-server" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
    # the package starts a system etcd on 2379; our tests and devnets start their own members
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
    exit 0
fi
echo "install-etcd: etcd not found; install the Debian package etcd-server (3.4+)" \
     "(apt-get install etcd-server) to run the producer-group tests and devnet" >&2
