#!/bin/sh
# install-gate-packages.sh: install the real servers that the gates in
# examples/gates/ run as peers, from the distribution's packages, when they
# are missing; say what it installs; do nothing when everything is there.
#
#   redis-server  <- Debian package redis-server  (examples/gates/redis)
#   postgres      <- Debian package postgresql    (examples/gates/postgres;
#                    /usr/lib/postgresql/<version>/bin/{initdb,postgres})
#
# The packages' own services (a redis-server and a PostgreSQL cluster in the
# host's namespace, which Debian starts on installation) are stopped at once
# and never used: a gate starts its own server inside the lab's peer host.
#
# Needs root (apt-get). Usage: ci/install-gate-packages.sh   (make gate-packages)
set -eu

missing=""
# redis-server: the binary the redis gate's service runs.
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
# postgresql: initdb and postgres under /usr/lib/postgresql/<version>/bin.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"

if [ -z "$missing" ]; then
	echo "gate packages: redis-server and postgresql are installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "gate packages: missing:$missing; run as root to install them (apt-get install$missing)" >&2
	exit 1
fi

echo "gate packages: installing$missing (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 keeps invoke-rc.d from starting the packages' own
# services; a pre-existing policy is kept as it is.
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	ours=1
fi
cleanup() { [ -z "$ours" ] || rm -f "$policy"; }
trap cleanup EXIT INT TERM

apt-get update -qq || echo "gate packages: apt-get update failed; trying the package lists already here" >&2
# shellcheck disable=SC2086 # word splitting of $missing is meant
apt-get install -y -qq --no-install-recommends $missing

# Whatever started anyway (no policy-rc.d honoured, systemd), stop it: the
# gates never use the host's servers, and nothing may listen in the host.
if command -v pg_lsclusters >/dev/null 2>&1; then
	pg_lsclusters --no-header 2>/dev/null | while read -r ver name port status rest; do
		if [ "$status" = online ]; then
			echo "gate packages: stopping the PostgreSQL cluster $ver/$name the package started (port $port)"
			pg_ctlcluster "$ver" "$name" stop || true
		fi
	done
fi
if command -v service >/dev/null 2>&1; then
	service redis-server stop >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null 2>&1 || { echo "gate packages: redis-server is still missing" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "gate packages: postgres is still missing" >&2; exit 1; }
echo "gate packages: installed$missing"
