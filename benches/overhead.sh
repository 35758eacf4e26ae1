#!/usr/bin/env bash
# Kerno's overhead next to bpftrace doing the same measurement, in one interleaved run.
#
#   benches/overhead.sh            full run (5 rounds, about 5-6 minutes on an idle 2-core machine)
#   benches/overhead.sh --quick    3 short rounds (about 2 minutes)
#
# Options: --rounds N, --modes none,floor,kerno,bpftrace[,kerno-syscalls,bpftrace-empty], --no-build,
#          --out DIR (default target/overhead), --force (measure even with foreign probes),
#          --per-path (adds, for the scheduler and the block path alone, a floor of empty
#          programs, Kerno with only that domain, and bpftrace's runqlat/biolatency-style
#          script for that path alone: floor-sched,kerno-sched,bpftrace-sched,floor-disk,
#          kerno-disk,bpftrace-disk).
# Needs root, cc, taskset, fio, bpftool, bpftrace and jq (scripts/setup.sh installs them).
#
# Each round runs every mode in the same order (no agent, Kerno, bpftrace, ...), so slow
# drift of the machine hits all modes alike; the added cost is the median over rounds of
# (mode - no agent) within the same round. Agents run pinned to CPU 0, workloads to CPU 1,
# so the agents' user-space work does not steal the measured CPU: what is left is the cost
# of the probes themselves, on the path of each event. Method and results:
# docs/performance.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0 ROUNDS="" BUILD=1 FORCE=0 MODES_ARG="" PER_PATH=0 OUT_DIR="$ROOT/target/overhead"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS=$2; shift ;;
        --modes) MODES_ARG=$2; shift ;;
        --no-build) BUILD=0 ;;
        --out) OUT_DIR=$2; shift ;;
        --force) FORCE=1 ;;
        --per-path) PER_PATH=1 ;;
        -h|--help) sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "overhead.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=3}"; SYSCALLS=3000000; ROUND_TRIPS=150000; FIO_SECS=3; ATTR_FIO_SECS=2
else
    : "${ROUNDS:=5}"; SYSCALLS=10000000; ROUND_TRIPS=500000; FIO_SECS=10; ATTR_FIO_SECS=4
fi
IFS=, read -r -a MODES <<< "${MODES_ARG:-none,floor,kerno,bpftrace}"
[ "$PER_PATH" = 1 ] && MODES+=(floor-sched kerno-sched bpftrace-sched floor-disk kerno-disk bpftrace-disk)
WORK_CPU=1 AGENT_CPU=0
QUIET_BUSY_PCT=${QUIET_BUSY_PCT:-12}   # CPU busy (both CPUs) above which a phase waits
QUIET_WAIT_S=${QUIET_WAIT_S:-90}        # ... at most this long, then runs and is flagged
FOREIGN_WAIT_S=${FOREIGN_WAIT_S:-300}   # how long to wait for someone else's probes to go

LOG_NAME=overhead
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

check_machine agents

# ---- work dir, cleanup -------------------------------------------------------------------

AGENT_PID=""
make_work_dir kerno-overhead stop_agent

# ---- build ---------------------------------------------------------------------------------

KERNO=${KERNO_BIN:-$ROOT/target/release/kerno}
# The floor: two empty programs from Kerno's object on sys_enter/sys_exit (tp_btf).
FLOOR=$ROOT/target/release/kerno-floor
if [ "$BUILD" = 1 ] && [ -z "${KERNO_BIN:-}" ]; then
    log "cargo build --release -p kerno-cli -p kerno-benches --bin kerno --bin kerno-floor"
    (cd "$ROOT" && cargo build --release -p kerno-cli -p kerno-benches --bin kerno --bin kerno-floor --quiet)
fi
[ -x "$KERNO" ] || die "$KERNO not found (cargo build --release -p kerno-cli)"
if [[ " ${MODES[*]} " == *" floor"* ]] && [ ! -x "$FLOOR" ]; then
    die "$FLOOR not found (cargo build --release -p kerno-benches --bin kerno-floor)"
fi
cc -O2 -Wall -o "$WORK/getppid_storm" "$ROOT/benches/workloads/getppid_storm.c"
cc -O2 -Wall -o "$WORK/pipe_pingpong" "$ROOT/benches/workloads/pipe_pingpong.c"

# Kerno as the agent runs it: the daemon when it exists, else a long doctor window (which
# loads and attaches every probe, and samples the maps once a second, as the daemon does).
KERNO_CMD=()
if "$KERNO" --help 2>/dev/null | grep -qE '^[[:space:]]+start[[:space:]]'; then
    KERNO_CMD=("$KERNO" start)
    start_help=$("$KERNO" start --help 2>/dev/null || true)
    if grep -q -- '--listen' <<< "$start_help"; then KERNO_CMD+=(--listen "127.0.0.1:$((20000 + $$ % 10000))"); fi
    if grep -q -- '--socket' <<< "$start_help"; then KERNO_CMD+=(--socket "$WORK/agent.sock"); fi
    KERNO_HOW="kerno start (the daemon)"
else
    KERNO_CMD=("$KERNO" doctor --duration 5m --quiet --no-color)
    KERNO_HOW="kerno doctor --duration 5m (no start subcommand yet)"
fi

# The same measurements as Kerno's hot paths, the way one writes them in bpftrace: syscall
# latency per syscall, run-queue delay (as runqlat: wakeups, and preempted tasks, to the
# switch that runs them), block request latency issue -> complete.
cat > "$WORK/kerno-equivalent.bt" <<'EOF'
tracepoint:raw_syscalls:sys_enter { @start[tid] = nsecs; }
tracepoint:raw_syscalls:sys_exit /@start[tid]/ {
    @syscall_ns[args->id] = hist(nsecs - @start[tid]);
    delete(@start[tid]);
}
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @qtime[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
    if (args->prev_state == 0 || (args->prev_state & 0x100)) { @qtime[args->prev_pid] = nsecs; }
    $ts = @qtime[args->next_pid];
    if ($ts) { @runq_ns = hist(nsecs - $ts); delete(@qtime[args->next_pid]); }
}
tracepoint:block:block_rq_issue { @issue[args->dev, args->sector] = nsecs; }
tracepoint:block:block_rq_complete /@issue[args->dev, args->sector]/ {
    @block_ns = hist(nsecs - @issue[args->dev, args->sector]);
    delete(@issue[args->dev, args->sector]);
}
BEGIN { printf("READY\n"); }
EOF
# Each path alone (--per-path): the scheduler and block parts of the script above. The
# floor of each is `kerno-floor sched` / `kerno-floor disk`: empty programs from Kerno's
# object on the tracepoints Kerno attaches for that domain, attached as Kerno attaches them
# (tp_btf). bpftrace's scripts use the classic tracepoints, whose record the kernel builds
# for every event before the program runs.
awk '/^tracepoint:sched/,/^}/' "$WORK/kerno-equivalent.bt" > "$WORK/sched.bt"
awk '/^tracepoint:block/,/^}/' "$WORK/kerno-equivalent.bt" > "$WORK/disk.bt"
echo 'BEGIN { printf("READY\n"); }' | tee -a "$WORK/sched.bt" >> "$WORK/disk.bt"
# The floor: the same tracepoints with empty programs (what attaching anything costs).
cat > "$WORK/empty.bt" <<'EOF'
tracepoint:raw_syscalls:sys_enter, tracepoint:raw_syscalls:sys_exit,
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new, tracepoint:sched:sched_switch,
tracepoint:block:block_rq_issue, tracepoint:block:block_rq_complete { }
BEGIN { printf("READY\n"); }
EOF

# ---- agents --------------------------------------------------------------------------------

start_agent() { # mode
    local mode=$1 i ids names n prev=-1 stable=0
    case "$mode" in
        none) return 0 ;;
        kerno)
            taskset -c "$AGENT_CPU" "${KERNO_CMD[@]}" > "$WORK/agent.log" 2>&1 &
            ;;
        kerno-syscalls)
            KERNO_DOMAINS=syscalls taskset -c "$AGENT_CPU" "${KERNO_CMD[@]}" > "$WORK/agent.log" 2>&1 &
            ;;
        floor)
            taskset -c "$AGENT_CPU" "$FLOOR" > "$WORK/agent.log" 2>&1 &
            ;;
        bpftrace)
            taskset -c "$AGENT_CPU" bpftrace -B line "$WORK/kerno-equivalent.bt" > "$WORK/agent.log" 2>&1 &
            ;;
        bpftrace-empty)
            taskset -c "$AGENT_CPU" bpftrace -B line "$WORK/empty.bt" > "$WORK/agent.log" 2>&1 &
            ;;
        kerno-sched|kerno-disk)
            KERNO_DOMAINS=${mode#kerno-} taskset -c "$AGENT_CPU" "${KERNO_CMD[@]}" > "$WORK/agent.log" 2>&1 &
            ;;
        floor-sched|floor-disk)
            taskset -c "$AGENT_CPU" "$FLOOR" "${mode#floor-}" > "$WORK/agent.log" 2>&1 &
            ;;
        bpftrace-sched|bpftrace-disk)
            taskset -c "$AGENT_CPU" bpftrace -B line "$WORK/${mode#bpftrace-}.bt" > "$WORK/agent.log" 2>&1 &
            ;;
        *) die "unknown mode $mode" ;;
    esac
    AGENT_PID=$!
    # Attached means: the programs that matter are attached by this process, and the count
    # has stopped changing (aya attaches one program after the other). bpftrace prints READY
    # from BEGIN, which runs once every probe is attached.
    for i in $(seq 300); do
        kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/agent.log" >&2; die "$mode exited before attaching"; }
        ids=$(attached_ids "$AGENT_PID" | sort -un)
        n=$(printf '%s\n' "$ids" | grep -c . || true)
        names=$(printf '%s\n' "$ids" | prog_names | tr '\n' ' ')
        case "$mode" in
            kerno) want="sys_enter sys_exit sched_switch block_rq_issue block_rq_comple" ;;
            kerno-syscalls) want="sys_enter sys_exit" ;;
            floor) want="floor_sys_enter floor_sys_exit" ;;
            kerno-sched|bpftrace-sched) want="sched_wakeup sched_switch" ;;
            kerno-disk|bpftrace-disk) want="block_rq_issue block_rq_comple" ;;
            floor-sched) want="floor_sched_wak floor_sched_swi" ;;
            floor-disk) want="floor_block_rq_" ;;
            bpftrace*) want="sys_enter sys_exit sched_switch block_rq_issue block_rq_comple" ;;
        esac
        local ok=1 w
        for w in $want; do [[ " $names " == *" $w "* ]] || ok=0; done
        if [[ "$mode" == bpftrace* || "$mode" == floor* ]] && ! grep -q READY "$WORK/agent.log"; then ok=0; fi
        if [ "$ok" = 1 ] && [ "$n" = "$prev" ]; then
            stable=$((stable + 1))
            if [ "$stable" -ge 3 ]; then
                ATTACHED_N=$n ATTACHED_NAMES=$names
                return 0
            fi
        else
            stable=0
        fi
        prev=$n
        sleep 0.2
    done
    die "$mode did not attach within 60 s: $(cat "$WORK/agent.log")"
}

# ---- workloads -----------------------------------------------------------------------------

run_fio() { # seconds -> "iops op_ns write_p99_us fsync_p99_us blk_per_op"
    local secs=$1 b0 b1
    b0=$(blk_requests "$BLK_DEV")
    taskset -c "$WORK_CPU" fio --name=randwrite --filename="$WORK/fio.dat" --rw=randwrite --bs=4k \
        --size=256m --fsync=1 --ioengine=psync --runtime="$secs" --time_based \
        --output-format=json --output="$WORK/fio.json" >/dev/null
    b1=$(blk_requests "$BLK_DEV")
    jq -r --argjson blk $((b1 - b0)) '.jobs[0] |
        [ .write.iops, 1e9 / .write.iops,
          .write.clat_ns.percentile["99.000000"] / 1000, .sync.lat_ns.percentile["99.000000"] / 1000,
          $blk / .write.total_ios ] | map(tostring) | join(" ")' "$WORK/fio.json"
}

# ---- setup ---------------------------------------------------------------------------------

BLK_DEV=$(blk_dev_of "$WORK")

mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/raw.tsv"
printf 'round\tmode\tmetric\tvalue\n' > "$RAW"
log "kerno: $KERNO_HOW; modes: ${MODES[*]}; rounds: $ROUNDS"
log "per phase: $SYSCALLS getppid calls, $ROUND_TRIPS pipe round trips, fio ${FIO_SECS}s on $BLK_DEV"
wait_no_foreign_probes
fio_layout
taskset -c "$WORK_CPU" "$WORK/getppid_storm" "$SYSCALLS" >/dev/null
taskset -c "$WORK_CPU" "$WORK/pipe_pingpong" "$ROUND_TRIPS" >/dev/null
run_fio 1 >/dev/null
T0=$(date +%s)

# ---- the interleaved rounds ----------------------------------------------------------------

# One mode's measurements in one round. Fails (returns 1) when someone else attached
# tracing programs while it ran, so the caller measures it again.
run_phase() { # round mode
    local r=$1 mode=$2 busy sys sw iops op_ns wp99 sp99 bpo probes foreign kv t0
    wait_no_foreign_probes
    busy=$(wait_quiet)
    t0=$(date +%s)
    start_agent "$mode"
    probes=0
    [ "$mode" = none ] || { probes=$ATTACHED_N; sleep 1; }   # let the agent's start-up settle
    sys=$(taskset -c "$WORK_CPU" "$WORK/getppid_storm" "$SYSCALLS")
    sw=$(taskset -c "$WORK_CPU" "$WORK/pipe_pingpong" "$ROUND_TRIPS")
    read -r iops op_ns wp99 sp99 bpo <<< "$(run_fio "$FIO_SECS")"
    [ -n "$sys" ] && [ -n "$sw" ] && [ -n "$bpo" ] || die "round $r $mode: a workload failed"
    foreign=$(foreign_progs "${AGENT_PID:-}")
    stop_agent
    if [ -n "$foreign" ] && [ "$FORCE" = 0 ]; then
        log "round $r $mode: someone attached tracing programs meanwhile ($(echo $foreign)); measuring it again"
        WAITED_S=$((WAITED_S + $(date +%s) - t0))
        return 1
    fi
    [ "$busy" -gt "$QUIET_BUSY_PCT" ] && NOISY+=("round $r $mode (${busy}% busy before)")
    for kv in "syscall_ns $sys" "switch_ns $sw" "fio_iops $iops" "fio_op_ns $op_ns" \
              "fio_write_p99_us $wp99" "fio_fsync_p99_us $sp99" "blk_per_op $bpo" \
              "busy_pct $busy" "probes $probes"; do
        printf '%s\t%s\t%s\t%s\n' "$r" "$mode" ${kv} >> "$RAW"
    done
    log "round $r/$ROUNDS $(printf '%-14s' "$mode") syscall ${sys} ns  switch ${sw} ns  fio ${iops%.*} IOPS (fsync p99 ${sp99%.*} us)  [${probes} programs, ${busy}% busy before]"
}

NOISY=()
for r in $(seq "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        tries=1
        until run_phase "$r" "$mode"; do
            tries=$((tries + 1))
            [ "$tries" -le 5 ] || die "round $r $mode: disturbed by foreign tracing programs 5 times"
        done
    done
done

# ---- per-program cost (bpf_stats) -------------------------------------------------------

# The kernel's own accounting of each program's run time (kernel.bpf_stats_enabled) says
# which program costs what, and that every event was seen. It adds a little cost of its own,
# so it runs after the timed rounds, never during them.
ATTR="$OUT_DIR/programs.tsv"
printf 'agent\tprogram\truns\tns_per_run\n' > "$ATTR"
echo 1 > /proc/sys/kernel/bpf_stats_enabled
for mode in "${MODES[@]}"; do
    [ "$mode" = none ] && continue
    wait_no_foreign_probes
    wait_quiet >/dev/null
    start_agent "$mode"
    ids=$(attached_ids "$AGENT_PID" | sort -un | paste -sd, -)
    bpftool -j prog show > "$WORK/stats0.json"
    taskset -c "$WORK_CPU" "$WORK/getppid_storm" $((SYSCALLS / 5)) >/dev/null
    taskset -c "$WORK_CPU" "$WORK/pipe_pingpong" $((ROUND_TRIPS / 5)) >/dev/null
    run_fio "$ATTR_FIO_SECS" >/dev/null
    bpftool -j prog show > "$WORK/stats1.json"
    stop_agent
    program_runs "$ids" "$WORK/stats0.json" "$WORK/stats1.json" "$mode" >> "$ATTR"
done
echo "$STATS_BEFORE" > /proc/sys/kernel/bpf_stats_enabled

# ---- summary -------------------------------------------------------------------------------

QUIET_WAITED=$(quiet_waited)
ELAPSED=$(( $(date +%s) - T0 ))
WAITED_S=$((WAITED_S + QUIET_WAITED))
SUMMARY="$OUT_DIR/summary.md"
{
    echo "Overhead run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(machine)"
    echo "Kerno: $KERNO_HOW. Rounds: $ROUNDS ($(IFS=' '; echo "${MODES[*]}") each round), ${ELAPSED} s, of which ${WAITED_S} s waiting for a quiet machine."
    echo "Per phase: $SYSCALLS getppid calls, $ROUND_TRIPS pipe round trips, fio ${FIO_SECS} s (4 KiB random writes + fsync, psync, on $BLK_DEV)."
    echo "Cells: median over rounds (min-max). Added: median of the per-round difference to no agent (min-max)."
    echo
    awk -F'\t' -v modes="${MODES[*]}" '
    NR == 1 { next }
    { v[$2, $3, $1] = $4; if ($1 > R) R = $1 }
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function med(a, n) { sortn(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function fmt(x) { return (x == int(x) || x >= 100 || x <= -100) ? sprintf("%.0f", x) : sprintf("%.1f", x) }
    function cell(mode, m,   a, n, r, md) { n = 0; for (r = 1; r <= R; r++) if ((mode, m, r) in v) a[++n] = v[mode, m, r] + 0
        if (!n) return "-"; md = med(a, n); return fmt(md) " (" fmt(a[1]) "-" fmt(a[n]) ")" }
    # Added per event: per-round difference to no agent, divided by `per` (a metric, or 1).
    function added(mode, m, per,   a, n, r, d, md) { n = 0
        for (r = 1; r <= R; r++) if ((mode, m, r) in v && ("none", m, r) in v) {
            d = v[mode, m, r] - v["none", m, r]; if (per != "") d /= v["none", per, r]; a[++n] = d }
        if (!n) return ""; md = med(a, n); ADD[mode] = md; return sprintf("%+.0f (%+.0f..%+.0f)", md, a[1], a[n]) }
    function row(title, m, per, addtitle,   i, s, ratio) {
        s = "| " title
        for (i = 1; i <= nm; i++) s = s " | " cell(M[i], m)
        print s " |" }
    function addrow(title, m, per,   i, s, k, b) {
        delete ADD; s = "| " title
        for (i = 1; i <= nm; i++) if (M[i] != "none") s = s " | " added(M[i], m, per)
        k = ADD["kerno"]; b = ADD["bpftrace"]
        s = s " | " ((("kerno" in ADD) && ("bpftrace" in ADD) && b > 0) ? sprintf("%.2f", k / b) : "-")
        print s " |" }
    END {
        nm = split(modes, M, " ")
        s = "| measured |"; t = "|---|"
        for (i = 1; i <= nm; i++) { s = s " " M[i] " |"; t = t "---|" }
        print s; print t
        row("syscall: getppid, ns per call", "syscall_ns")
        row("context switch: pipe round trip / 2, ns", "switch_ns")
        row("block I/O: fio write+fsync IOPS", "fio_iops")
        row("block I/O: fio write p99, us", "fio_write_p99_us")
        row("block I/O: fio fsync p99, us", "fio_fsync_p99_us")
        row("block I/O: block requests per fio op", "blk_per_op")
        row("programs attached", "probes")
        print ""
        s = "| added cost per event |"; t = "|---|"
        for (i = 1; i <= nm; i++) if (M[i] != "none") { s = s " " M[i] " |"; t = t "---|" }
        print s " Kerno/bpftrace |"; print t "---|"
        addrow("per syscall, ns", "syscall_ns", "")
        addrow("per context switch, ns", "switch_ns", "")
        addrow("per block request, ns (fio op time / requests per op)", "fio_op_ns", "blk_per_op")
        if (("floor-sched", "switch_ns", 1) in v || ("kerno-disk", "fio_op_ns", 1) in v) {
            print ""
            print "| each path alone, added per event | floor (empty programs) | Kerno (that domain only) | bpftrace (that path only) | Kerno/floor | Kerno/bpftrace |"
            print "|---|---|---|---|---|---|"
            pathrow("scheduler: per context switch, ns", "sched", "switch_ns", "")
            pathrow("block: per block request, ns", "disk", "fio_op_ns", "blk_per_op")
        }
    }
    function pathrow(title, p, m, per,   f, k, b) {
        delete ADD
        added("floor-" p, m, per); added("kerno-" p, m, per); added("bpftrace-" p, m, per)
        f = ADD["floor-" p]; k = ADD["kerno-" p]; b = ADD["bpftrace-" p]
        printf "| %s | %+.0f | %+.0f | %+.0f | %s | %s |\n", title, f, k, b,
            (f > 0 ? sprintf("%.2f", k / f) : "-"), (b > 0 ? sprintf("%.2f", k / b) : "-")
    }' "$RAW"
    echo
    echo "In-kernel time per program run (kernel.bpf_stats_enabled, a separate short phase after the rounds):"
    echo
    echo "| agent | program | runs | ns per run |"
    echo "|---|---|---|---|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$ATTR"
    echo
    echo "The same per event (the kernel's accounting adds about 50 ns to each run, for every agent alike):"
    echo
    awk -F'\t' -v modes="${MODES[*]}" '
    NR > 1 { ns[$1, $2] = $4 }
    function ev(a, p, q) {
        if (a == "floor") { p = "floor_" p; q = "floor_" q }   # the empty programs
        return ((a, p) in ns && (a, q) in ns) ? ns[a, p] + ns[a, q] : "" }
    function line(title, p, q,   i, s, k, b) {
        s = "| " title
        for (i = 1; i <= nm; i++) if (M[i] != "none") s = s " | " ev(M[i], p, q)
        k = ev("kerno", p, q); b = ev("bpftrace", p, q)
        print s " | " ((k != "" && b != "" && b > 0) ? sprintf("%.2f", k / b) : "-") " |" }
    END {
        nm = split(modes, M, " ")
        s = "| in-kernel ns per event |"; t = "|---|"
        for (i = 1; i <= nm; i++) if (M[i] != "none") { s = s " " M[i] " |"; t = t "---|" }
        print s " Kerno/bpftrace |"; print t "---|"
        line("per syscall (sys_enter + sys_exit)", "sys_enter", "sys_exit")
        line("per context switch (sched_wakeup + sched_switch)", "sched_wakeup", "sched_switch")
        line("per block request (block_rq_issue + block_rq_complete)", "block_rq_issue", "block_rq_comple")
        # Each path alone (--per-path): Kerno with one domain next to bpftrace on that path.
        if (("kerno-sched", "sched_switch") in ns || ("kerno-disk", "block_rq_issue") in ns) {
            print ""
            print "| each path alone, in-kernel ns per event | Kerno (that domain only) | bpftrace (that path only) | Kerno/bpftrace |"
            print "|---|---|---|---|"
            k = ev("kerno-sched", "sched_wakeup", "sched_switch"); b = ev("bpftrace-sched", "sched_wakeup", "sched_switch")
            printf "| scheduler (sched_wakeup + sched_switch) | %s | %s | %s |\n", k, b, ((k != "" && b > 0) ? sprintf("%.2f", k / b) : "-")
            k = ev("kerno-disk", "block_rq_issue", "block_rq_comple"); b = ev("bpftrace-disk", "block_rq_issue", "block_rq_comple")
            printf "| block (block_rq_issue + block_rq_complete) | %s | %s | %s |\n", k, b, ((k != "" && b > 0) ? sprintf("%.2f", k / b) : "-")
        }
    }' "$ATTR"
    if [ ${#NOISY[@]} -gt 0 ]; then
        echo
        echo "Disturbed phases (the machine was busy before them; rerun when it is idle):"
        for n in "${NOISY[@]}"; do echo "- $n"; done
    fi
} > "$SUMMARY"
cat "$SUMMARY"
log "raw numbers: $RAW, $ATTR; this table: $SUMMARY"
