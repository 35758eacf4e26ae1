#!/usr/bin/env bash
# The agent's own cost: RSS and CPU of `kerno start` at idle, under a syscall storm and under
# a storm of short-lived processes, and `kerno doctor` latency answered by a running agent
# versus a standalone 30 s run. Run as root on an otherwise quiet machine; prints a markdown
# table (the numbers in docs/performance.md, section "Agent", come from it).
#
#   benches/agent.sh            idle, syscall storm, process storm: 60 s each
#   PHASE=30 benches/agent.sh   shorter phases
#   FULL=1 benches/agent.sh     also a process storm as long as the whole 5 min window (+30 s)
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${PHASE:-60}
FULL=${FULL:-0}

cargo build --release -p kerno-cli --quiet
BIN=$PWD/target/release/kerno
DIR=$(mktemp -d /tmp/kerno-agent-bench.XXXXXX)
SOCK=$DIR/agent.sock
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HZ=$(getconf CLK_TCK)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${AGENT:-}" ] && kill -TERM "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

"$BIN" start --listen "127.0.0.1:$PORT" --socket "$SOCK" 2>"$DIR/agent.log" &
AGENT=$!
for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/readyz")" = 200 ] && break
    sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$AGENT/status"; }
syscalls() {
    curl -s "127.0.0.1:$PORT/metrics" |
        awk '/^kerno_collector_events_total\{collector="syscalls"\}/ {print $2}'
}

# measure NAME SECONDS: CPU % of one core, mean and max RSS, syscalls/s Kerno counted.
measure() {
    local name=$1 secs=$2 t0 t1 s0 s1 sum=0 max=0 r
    t0=$(ticks); s0=$(syscalls)
    for _ in $(seq 1 "$secs"); do
        sleep 1
        r=$(rss_kb); sum=$((sum + r)); [ "$r" -gt "$max" ] && max=$r
    done
    t1=$(ticks); sleep 5; s1=$(syscalls)   # counters lag up to one 5 s update
    printf '| %s | %d s | %.2f %% | %d MiB | %d MiB | %s |\n' "$name" "$secs" \
        "$(echo "($t1 - $t0) * 100 / $HZ / $secs" | bc -l)" \
        $((sum / secs / 1024)) $((max / 1024)) \
        "$(printf '%.0f' "$(echo "($s1 - $s0) / ($secs + 5)" | bc -l)")"
}

storm() {  # N copies of a shell command, in the background
    local n=$1 cmd=$2
    for _ in $(seq 1 "$n"); do sh -c "$cmd" & PIDS+=($!); done
}
calm() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; PIDS=(); sleep 2; }

echo "kerno $("$BIN" --version | head -1 | awk '{print $2}'), kernel $(uname -r), $(nproc) CPUs, phases of $PHASE s"
echo
echo "| phase | length | agent CPU (one core) | RSS mean | RSS max | syscalls/s seen |"
echo "|---|---|---|---|---|---|"
sleep 5
measure "idle" "$PHASE"
storm 1 "exec dd if=/dev/zero of=/dev/null bs=1 count=100000000000"
measure "syscall storm (1 dd, bs=1)" "$PHASE"
calm
storm 2 "while :; do /bin/true; done"
measure "process storm (2 loops of /bin/true)" "$PHASE"
if [ "$FULL" = 1 ]; then
    measure "process storm, whole 5 min window" 330
fi
calm

# Doctor latency: the agent has at least 30 s of history by now.
echo
echo "| kerno doctor (30 s window) | wall time |"
echo "|---|---|"
best=999
for _ in 1 2 3 4 5; do
    s=$(date +%s.%N)
    KERNO_SOCKET=$SOCK "$BIN" doctor --quiet --output json >/dev/null
    e=$(echo "$(date +%s.%N) - $s" | bc -l)
    best=$(echo "if ($e < $best) $e else $best" | bc -l)
done
printf '| answered by the running agent (best of 5) | %.3f s |\n' "$best"
s=$(date +%s.%N)
KERNO_SOCKET=$SOCK "$BIN" doctor --standalone --quiet --output json >/dev/null
printf '| --standalone (loads its own probes) | %.3f s |\n' "$(echo "$(date +%s.%N) - $s" | bc -l)"
