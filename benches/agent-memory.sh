#!/usr/bin/env bash
# Where the agent's RSS goes under a process storm, for several ways of running it at once:
# each VARIANT is a list of environment assignments ("" for none) for its own `kerno start`
# (own port and socket, own probes), all under the same storm (2 loops of /bin/true), so the
# variants see the same load. Every 30 s prints each agent's RSS; at the end, the RSS by kind
# of mapping (/proc/PID/smaps): the main heap, anonymous mappings (glibc's per-thread arenas,
# large allocations, thread stacks), the binary, shared libraries; and CPU over the run.
# Memory counts are robust to other load; the CPU figures are not (use benches/agent.sh on a
# quiet machine for those). A variant that starts with a path runs that binary instead of
# $BIN ("/tmp/kerno-old MALLOC_ARENA_MAX=2"). Run as root:
#
#   benches/agent-memory.sh 330 "" "MALLOC_ARENA_MAX=1"     # 5.5 min, two variants
#   BIN=/path/to/kerno benches/agent-memory.sh 60 ""         # another build, 1 min
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:?usage: agent-memory.sh SECONDS VARIANT...}
shift
[ $# -ge 1 ] || { echo "usage: agent-memory.sh SECONDS VARIANT..." >&2; exit 2; }
BIN=${BIN:-$PWD/target/release/kerno}
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p kerno-cli" >&2; exit 2; }
DIR=$(mktemp -d /tmp/kerno-agent-memory.XXXXXX)
HZ=$(getconf CLK_TCK)
AGENTS=()
STORM=()
cleanup() {
    for p in "${STORM[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${AGENTS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${AGENTS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

i=0
for v in "$@"; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    bin=$BIN
    if [[ $v == /* ]]; then bin=${v%% *}; v=${v#"$bin"}; fi
    # shellcheck disable=SC2086 # a variant is a list of assignments, split on purpose
    env $v "$bin" start --listen "127.0.0.1:$port" --socket "$DIR/agent$i.sock" 2>"$DIR/agent$i.log" &
    AGENTS+=($!)
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/readyz")" = 200 ] && break
        sleep 0.1
    done
    i=$((i + 1))
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
T0=()
for p in "${AGENTS[@]}"; do T0+=("$(ticks "$p")"); done

for _ in 1 2; do sh -c 'while :; do /bin/true; done' & STORM+=($!); done
echo "kerno $("$BIN" --version | head -1 | awk '{print $2}'), kernel $(uname -r), $(nproc) CPUs, process storm for $SECS s, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| s |'; for v in "$@"; do printf ' %s |' "${v:-default}"; done; echo
printf '|---|'; for _ in "$@"; do printf -- '---|'; done; echo
declare -A MAX
for ((s = 30; s <= SECS; s += 30)); do
    sleep 30
    printf '| %d |' "$s"
    for p in "${AGENTS[@]}"; do
        r=$(rss_kb "$p"); [ "$r" -gt "${MAX[$p]:-0}" ] && MAX[$p]=$r
        printf ' %.1f MiB |' "$(echo "$r / 1024" | bc -l)"
    done
    echo
done

echo
echo "RSS by kind of mapping at the end (MiB), threads, CPU over the storm:"
echo
echo "| variant | RSS | max | [heap] | anonymous | binary | libraries | other | threads | CPU (one core) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
i=0
for p in "${AGENTS[@]}"; do
    v=${*:$((i + 1)):1}
    v=${v##*/}
    cpu=$(echo "($(ticks "$p") - ${T0[$i]}) * 100 / $HZ / $SECS" | bc -l)
    thr=$(awk '/^Threads/ {print $2}' "/proc/$p/status")
    bin=$(readlink "/proc/$p/exe")
    awk -v bin="$bin" -v name="${v:-default}" -v rss="$(rss_kb "$p")" -v max="${MAX[$p]}" \
        -v thr="$thr" -v cpu="$cpu" '
        /^[0-9a-f]+-[0-9a-f]+ / { path = $6; next }
        /^Rss:/ {
            if (path == "[heap]") k = "heap"
            else if (path == "") k = "anon"
            else if (path == bin) k = "bin"
            else if (path ~ /\.so/) k = "lib"
            else k = "other"
            kb[k] += $2
        }
        END {
            printf "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %.2f %% |\n",
                name, rss / 1024, max / 1024, kb["heap"] / 1024, kb["anon"] / 1024,
                kb["bin"] / 1024, kb["lib"] / 1024, kb["other"] / 1024, thr, cpu
        }' "/proc/$p/smaps"
    i=$((i + 1))
done
