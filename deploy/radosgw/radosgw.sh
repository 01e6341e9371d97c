#!/usr/bin/env bash
# A single-node Ceph radosgw on loopback, for tests and for trying kiln's S3
# artifact store: one monitor, one in-memory OSD, one gateway, all state
# under DIR. The only S3 server Debian packages that checks SigV4 for real.
#
#   radosgw.sh start DIR [PORT]   # last line: S3_ENDPOINT=http://127.0.0.1:PORT
#   radosgw.sh stop DIR
#
# The access key is kiln-test / kiln-test-secret (user "kiln"). The monitor's
# ports (3300, 6789) are fixed: one instance per machine.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2; }

stop() {
  for p in rgw osd mon; do
    if [ -f "$dir/$p.pid" ]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    fi
  done
  for p in rgw osd mon; do
    if [ -f "$dir/$p.pid" ]; then
      pid=$(cat "$dir/$p.pid")
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac

port=${3:-7480}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stop
rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir"/*.log "$dir"/*.out "$dir/monmap" "$dir/keyring" "$dir/ceph.conf"
mkdir -p "$dir/mon" "$dir/osd" "$dir/run"
fsid=$(uuidgen)
conf="$dir/ceph.conf"
cat > "$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms cluster mode = crc
ms service mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/\$name.log
pid file = $dir/run/\$name.pid
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
keyring = $dir/keyring
osd objectstore = memstore
memstore device bytes = 4294967296
osd max object size = 268435456

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw dns name = 127.0.0.1
# Deleted objects free their space soon (the benchmark writes GiBs).
rgw gc obj min wait = 10
rgw gc processor period = 10
EOF

ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
ceph-mon -c "$conf" -i a -f > "$dir/mon.out" 2>&1 &
echo $! > "$dir/mon.pid"
id=$(timeout 60 ceph -c "$conf" osd create)
mkdir -p "$dir/osd/osd.$id"
ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$(uuidgen)" > "$dir/osd-mkfs.out" 2>&1
ceph-osd -c "$conf" -i "$id" -f > "$dir/osd.out" 2>&1 &
echo $! > "$dir/osd.pid"
radosgw -c "$conf" -n client.rgw.a -f > "$dir/rgw.out" 2>&1 &
echo $! > "$dir/rgw.pid"

for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$dir/rgw.pid")" 2>/dev/null; then
    echo "radosgw died; see $dir/rgw.out and $dir/client.rgw.a.log" >&2; stop; exit 1
  fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/" >/dev/null || { echo "radosgw did not answer on $port" >&2; stop; exit 1; }
timeout 60 radosgw-admin -c "$conf" user create --uid=kiln --display-name=kiln \
  --access-key=kiln-test --secret=kiln-test-secret >/dev/null
echo "S3_ENDPOINT=http://127.0.0.1:$port"
