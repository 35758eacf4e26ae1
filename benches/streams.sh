#!/usr/bin/env bash
# What Kerno's live streams cost per event while they run, next to the bpftrace script an
# SRE would write for the same stream, in one interleaved run; and that with no stream
# running, no stream program is loaded at all.
#
#   benches/streams.sh            full run (5 rounds, about 8 minutes on an idle 2-core machine)
#   benches/streams.sh --quick    3 short rounds (about 4 minutes)
#
# Options: --rounds N, --streams syscall,filtered,disk,sched,tcp, --no-build, --out DIR,
#          --force (measure even with foreign probes).
# Needs root, cc, taskset, fio, bpftool, bpftrace and jq (scripts/setup.sh installs them).
#
# Streams, their workload and what one event is:
#   syscall   kerno trace syscall --comm failing_open --errors: N failing openat calls,
#             one event each (opensnoop/syscount-style bpftrace: comm filter, printf on error)
#   filtered  the same stream, while getppid_storm (another comm) makes N calls: the cost of
#             an event the in-kernel filter drops
#   disk      kerno trace disk: fio 4 KiB O_DIRECT random writes, one event per block
#             request (biosnoop-style bpftrace: issuer at block_io_start, printf at done)
#   sched     kerno trace sched --min-latency 10ms: pipe ping-pong, per context switch
#             (runqslower-style bpftrace with the same 10 ms threshold)
#   tcp       kerno watch tcp: N loopback connections opened and closed, one event per TCP
#             state change (tcplife/tcpretrans-style bpftrace on inet_sock_set_state and
#             tcp_retransmit_skb)
# Each round runs every stream with no consumer, with Kerno, and with bpftrace, in that
# order. Consumers run on CPU 0 and write into a pipe that awk drains on CPU 0; workloads
# run on CPU 1, so what the workload pays is the probes' cost on the event's path. Added
# cost per event: the median over rounds of (mode - no consumer) within one round, divided
# by the events per operation. Method and results: docs/performance.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0 ROUNDS="" BUILD=1 FORCE=0 STREAMS_ARG="" OUT_DIR="$ROOT/target/streams-bench"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
        --streams) STREAMS_ARG=${2:?--streams needs a list}; shift ;;
        --no-build) BUILD=0 ;;
        --out) OUT_DIR=${2:?--out needs a directory}; shift ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,28s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "streams.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=3}"; OPENS=300000; CALLS=3000000; ROUND_TRIPS=150000; FIO_SECS=3; CONNS=10000
else
    : "${ROUNDS:=5}"; OPENS=1000000; CALLS=10000000; ROUND_TRIPS=500000; FIO_SECS=8; CONNS=30000
fi
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "streams.sh: --rounds must be a positive number" >&2; exit 2; }
IFS=, read -r -a STREAMS <<< "${STREAMS_ARG:-syscall,filtered,disk,sched,tcp}"
for s in "${STREAMS[@]}"; do
    case "$s" in syscall|filtered|disk|sched|tcp) ;; *) echo "streams.sh: unknown stream $s" >&2; exit 2 ;; esac
done
MODES=(none kerno bpftrace)
WORK_CPU=1 AGENT_CPU=0
QUIET_BUSY_PCT=${QUIET_BUSY_PCT:-12}
QUIET_WAIT_S=${QUIET_WAIT_S:-60}
FOREIGN_WAIT_S=${FOREIGN_WAIT_S:-300}
LOG_NAME=streams
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

check_machine consumers

AGENT_PID="" DRAIN_PID=""
make_work_dir kerno-streams stop_consumer

KERNO=${KERNO_BIN:-$ROOT/target/release/kerno}
if [ "$BUILD" = 1 ] && [ -z "${KERNO_BIN:-}" ]; then
    log "cargo build --release -p kerno-cli --bin kerno"
    (cd "$ROOT" && cargo build --release -p kerno-cli --bin kerno --quiet)
fi
[ -x "$KERNO" ] || die "$KERNO not found (cargo build --release -p kerno-cli)"
for w in failing_open getppid_storm pipe_pingpong connect_loop; do
    cc -O2 -Wall -o "$WORK/$w" "$ROOT/benches/workloads/$w.c"
done

# ---- the bpftrace equivalents ------------------------------------------------------------

cat > "$WORK/syscall.bt" <<'EOF'
tracepoint:raw_syscalls:sys_enter /comm == "failing_open"/ { @start[tid] = nsecs; }
tracepoint:raw_syscalls:sys_exit /@start[tid]/ {
    if (args->ret < 0) {
        printf("%llu %d %d %s %d %d %llu\n", nsecs, pid, tid, comm, args->id, args->ret,
               nsecs - @start[tid]);
    }
    delete(@start[tid]);
}
EOF
cat > "$WORK/disk.bt" <<'EOF'
tracepoint:block:block_io_start {
    @start[args->dev, args->sector] = nsecs;
    @iopid[args->dev, args->sector] = pid;
    @iocomm[args->dev, args->sector] = comm;
}
tracepoint:block:block_rq_issue /@start[args->dev, args->sector]/ { @issue[args->dev, args->sector] = nsecs; }
tracepoint:block:block_io_done /@issue[args->dev, args->sector]/ {
    $s = @start[args->dev, args->sector]; $i = @issue[args->dev, args->sector];
    printf("%llu %d %s %d %s %llu %u %llu %llu\n", nsecs, @iopid[args->dev, args->sector],
           @iocomm[args->dev, args->sector], args->dev, args->rwbs, args->sector, args->bytes,
           $i - $s, nsecs - $i);
    delete(@start[args->dev, args->sector]); delete(@issue[args->dev, args->sector]);
    delete(@iopid[args->dev, args->sector]); delete(@iocomm[args->dev, args->sector]);
}
EOF
cat > "$WORK/sched.bt" <<'EOF'
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @qtime[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
    if (args->prev_state == 0) { @qtime[args->prev_pid] = nsecs; }
    $ts = @qtime[args->next_pid];
    if ($ts > 0) {
        $d = nsecs - $ts;
        if ($d > 10000000) {
            printf("%llu %d %d %s %d %s %llu\n", nsecs, cpu, args->next_pid, args->next_comm,
                   args->prev_pid, args->prev_comm, $d);
        }
        delete(@qtime[args->next_pid]);
    }
}
EOF
cat > "$WORK/tcp.bt" <<'EOF'
tracepoint:sock:inet_sock_set_state /args->protocol == 6/ {
    printf("%llu %d %s %s %d %s %d %d %d\n", nsecs, pid, comm, ntop(args->saddr), args->sport,
           ntop(args->daddr), args->dport, args->oldstate, args->newstate);
}
tracepoint:tcp:tcp_retransmit_skb {
    printf("%llu %d %s %s %d %s %d %d\n", nsecs, pid, comm, ntop(args->saddr), args->sport,
           ntop(args->daddr), args->dport, args->state);
}
EOF

# ---- consumers -----------------------------------------------------------------------------

kerno_cmd() { # stream -> the kerno command line
    case "$1" in
        syscall|filtered) echo "$KERNO trace syscall --comm failing_open --errors -o json" ;;
        disk) echo "$KERNO trace disk -o json" ;;
        sched) echo "$KERNO trace sched --min-latency 10ms -o json" ;;
        tcp) echo "$KERNO watch tcp -o json" ;;
    esac
}
bt_script() { case "$1" in filtered) echo "$WORK/syscall.bt" ;; *) echo "$WORK/$1.bt" ;; esac; }

STREAM_PROGS=0   # times a stream program was seen loaded while no stream ran
STREAM_CHECKS=0
check_no_stream_programs() {
    local n
    n=$(bpftool -j prog show | jq '[.[] | select(.name | startswith("stream_"))] | length')
    STREAM_CHECKS=$((STREAM_CHECKS + 1))
    [ "$n" = 0 ] || { STREAM_PROGS=$((STREAM_PROGS + 1)); log "warning: $n stream programs loaded with no stream running"; }
}

# Start a consumer on CPU 0 writing into a pipe that awk drains (counting event lines,
# keeping the last) and wait until its programs are attached.
start_consumer() { # stream mode
    local stream=$1 mode=$2 i ids n prev=-1 stable=0 names
    rm -f "$WORK/pipe" "$WORK/lines" "$WORK/last"
    mkfifo "$WORK/pipe"
    taskset -c "$AGENT_CPU" awk -v out="$WORK/lines" -v last="$WORK/last" '
        /^Attaching [0-9]+ probes/ { next }
        /^Lost [0-9]+ events/ { lost += $2; next }   # bpftrace says so on its output
        { n++; l = $0 }
        END { print n + 0, lost + 0 > out; print l > last }' < "$WORK/pipe" &
    DRAIN_PID=$!
    case "$mode" in
        kerno)
            # shellcheck disable=SC2046
            taskset -c "$AGENT_CPU" $(kerno_cmd "$stream") > "$WORK/pipe" 2> "$WORK/consumer.err" &
            ;;
        bpftrace)
            taskset -c "$AGENT_CPU" bpftrace -B line "$(bt_script "$stream")" > "$WORK/pipe" 2> "$WORK/consumer.err" &
            ;;
    esac
    AGENT_PID=$!
    for i in $(seq 300); do
        kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/consumer.err" >&2; die "$stream/$mode exited before attaching"; }
        ids=$(attached_ids "$AGENT_PID" | sort -un)
        n=$(printf '%s\n' "$ids" | grep -c . || true)
        # Attached: the process's programs stopped changing in number (aya and bpftrace
        # attach one program after the other).
        if [ "$n" -gt 0 ] && [ "$n" = "$prev" ]; then
            stable=$((stable + 1))
            if [ "$stable" -ge 3 ]; then
                names=$(printf '%s\n' "$ids" | prog_names | sort | paste -sd' ' -)
                echo "$stream	$mode	$names" >> "$WORK/attached"
                return 0
            fi
        else
            stable=0
        fi
        prev=$n
        sleep 0.2
    done
    die "$stream/$mode did not attach within 60 s: $(cat "$WORK/consumer.err")"
}

stop_consumer() {
    stop_agent
    if [ -n "$DRAIN_PID" ]; then wait "$DRAIN_PID" 2>/dev/null || true; DRAIN_PID=""; fi
}

# After stop_consumer: "shown lost" as the consumer reported them.
consumer_counts() { # mode
    local lines lost more
    read -r lines lost < "$WORK/lines" || { lines=0 lost=0; }
    if [ "$1" = kerno ]; then
        # The last line is the summary object; every other line one event.
        jq -r '.summary | "\(.shown) \(.lost)"' "$WORK/last" 2>/dev/null || echo "$((lines - 1)) ?"
    else
        more=$(sed -n 's/.*Lost \([0-9]*\) events.*/\1/p' "$WORK/consumer.err" | awk '{ s += $1 } END { print s + 0 }')
        echo "$lines $((lost + more))"
    fi
}

# ---- workloads -----------------------------------------------------------------------------

BLK_DEV=$(blk_dev_of "$WORK")
run_workload() { # stream -> "ns_per_op ops"
    case "$1" in
        syscall) echo "$(taskset -c "$WORK_CPU" "$WORK/failing_open" "$OPENS") $OPENS" ;;
        filtered) echo "$(taskset -c "$WORK_CPU" "$WORK/getppid_storm" "$CALLS") $CALLS" ;;
        sched) echo "$(taskset -c "$WORK_CPU" "$WORK/pipe_pingpong" "$ROUND_TRIPS") $((ROUND_TRIPS * 2))" ;;
        tcp) echo "$(taskset -c "$WORK_CPU" "$WORK/connect_loop" "$CONNS") $CONNS" ;;
        disk)
            local b0 b1
            b0=$(blk_requests "$BLK_DEV")
            taskset -c "$WORK_CPU" fio --name=dio --filename="$WORK/fio.dat" --rw=randwrite --bs=4k \
                --size=256m --direct=1 --ioengine=psync --runtime="$FIO_SECS" --time_based \
                --output-format=json --output="$WORK/fio.json" >/dev/null
            b1=$(blk_requests "$BLK_DEV")
            # ns per block request: fio's time per write over the requests each write made.
            jq -r --argjson blk $((b1 - b0)) '.jobs[0].write |
                "\(1e9 / .iops / ($blk / .total_ios)) \($blk)"' "$WORK/fio.json"
            ;;
    esac
}

# ---- the interleaved rounds ----------------------------------------------------------------

mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/raw.tsv"
printf 'round\tstream\tmode\tns_per_op\tops\tshown\tlost\tbusy_pct\n' > "$RAW"
log "streams: ${STREAMS[*]}; rounds: $ROUNDS; consumers on CPU $AGENT_CPU, workloads on CPU $WORK_CPU"
wait_no_foreign_probes
fio_layout
for s in "${STREAMS[@]}"; do run_workload "$s" >/dev/null; done
T0=$(date +%s)
NOISY=()
run_phase() { # round stream mode
    local r=$1 s=$2 mode=$3 busy ns ops shown=0 lost=0 foreign t0
    wait_no_foreign_probes
    [ "$mode" = none ] && check_no_stream_programs
    busy=$(wait_quiet)
    t0=$(date +%s)
    [ "$mode" = none ] || { start_consumer "$s" "$mode"; sleep 0.5; }
    read -r ns ops <<< "$(run_workload "$s")"
    [ -n "$ns" ] && [ -n "$ops" ] || die "round $r $s $mode: the workload failed"
    foreign=$(foreign_progs "${AGENT_PID:-}")
    if [ "$mode" != none ]; then
        sleep 0.5   # let the consumer drain what is still in its buffers
        stop_consumer
        read -r shown lost <<< "$(consumer_counts "$mode")"
    fi
    if [ -n "$foreign" ] && [ "$FORCE" = 0 ]; then
        log "round $r $s $mode: someone attached tracing programs meanwhile ($(echo $foreign)); measuring it again"
        WAITED_S=$((WAITED_S + $(date +%s) - t0))
        return 1
    fi
    [ "$busy" -gt "$QUIET_BUSY_PCT" ] && NOISY+=("round $r $s $mode (${busy}% busy before)")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$mode" "$ns" "$ops" "$shown" "$lost" "$busy" >> "$RAW"
    log "round $r/$ROUNDS $(printf '%-8s %-8s' "$s" "$mode") ${ns} ns/op over ${ops} ops, shown ${shown}, lost ${lost} [${busy}% busy before]"
}
for r in $(seq "$ROUNDS"); do
    for s in "${STREAMS[@]}"; do
        for mode in "${MODES[@]}"; do
            tries=1
            until run_phase "$r" "$s" "$mode"; do
                tries=$((tries + 1))
                [ "$tries" -le 5 ] || die "round $r $s $mode: disturbed by foreign tracing programs 5 times"
            done
        done
    done
done
check_no_stream_programs

# ---- in-kernel time per program run (bpf_stats) ----------------------------------------------

ATTR="$OUT_DIR/programs.tsv"
printf 'stream\tmode\tprogram\truns\tns_per_run\n' > "$ATTR"
echo 1 > /proc/sys/kernel/bpf_stats_enabled
for s in "${STREAMS[@]}"; do
    for mode in kerno bpftrace; do
        wait_no_foreign_probes
        wait_quiet >/dev/null
        start_consumer "$s" "$mode"
        ids=$(attached_ids "$AGENT_PID" | sort -un | paste -sd, -)
        bpftool -j prog show > "$WORK/stats0.json"
        read -r _ ops <<< "$(run_workload "$s")"
        bpftool -j prog show > "$WORK/stats1.json"
        stop_consumer
        printf '%s\t%s\t%s\n' "$s" "$mode" "$ops" >> "$WORK/attr-ops"
        program_runs "$ids" "$WORK/stats0.json" "$WORK/stats1.json" "$s" "$mode" >> "$ATTR"
    done
done
echo "$STATS_BEFORE" > /proc/sys/kernel/bpf_stats_enabled

# ---- summary -------------------------------------------------------------------------------

QUIET_WAITED=$(quiet_waited)
ELAPSED=$(( $(date +%s) - T0 ))
SUMMARY="$OUT_DIR/summary.md"
{
    echo "Streams run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(machine)"
    echo "Rounds: $ROUNDS (each stream with no consumer, Kerno, bpftrace), ${ELAPSED} s, of which $((WAITED_S + QUIET_WAITED)) s waiting for a quiet machine."
    echo "Per phase: $OPENS failing openat calls, $CALLS getppid calls, $ROUND_TRIPS pipe round trips, fio ${FIO_SECS} s (4 KiB O_DIRECT random writes on $BLK_DEV), $CONNS loopback TCP connections."
    echo "Stream programs loaded while no stream ran: $STREAM_PROGS of $STREAM_CHECKS checks."
    echo
    echo "| stream | event | no consumer, ns/op | Kerno, ns/op | bpftrace, ns/op | events/op (Kerno) | Kerno added per event, ns | bpftrace added per event, ns | Kerno/bpftrace | Kerno shown+lost / lost | bpftrace shown+lost / lost |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' -v streams="${STREAMS[*]}" '
    NR == 1 { next }
    { k = $2 SUBSEP $3 SUBSEP $1; ns[k] = $4; ops[k] = $5; shown[k] = $6; lost[k] = $7; if ($1 > R) R = $1 }
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function med(a, n) { if (!n) return ""; sortn(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function f(x) { return x == "" ? "-" : (x >= 100 || x <= -100 ? sprintf("%.0f", x) : sprintf("%.1f", x)) }
    # Events per operation: what Kerno reported (shown + lost) over the operations made.
    # The filtered and sched rows count every operation (the event the filter looks at).
    function epo(s,   a, n, r, k) { if (s == "filtered" || s == "sched") return 1
        n = 0; for (r = 1; r <= R; r++) { k = s SUBSEP "kerno" SUBSEP r; if (k in ops && ops[k] > 0) a[++n] = (shown[k] + lost[k]) / ops[k] }
        return med(a, n) }
    function col(s, m,   a, n, r, k) { n = 0; for (r = 1; r <= R; r++) { k = s SUBSEP m SUBSEP r; if (k in ns) a[++n] = ns[k] }; return med(a, n) }
    function added(s, m, e,   a, n, r, k, z) { n = 0
        for (r = 1; r <= R; r++) { k = s SUBSEP m SUBSEP r; z = s SUBSEP "none" SUBSEP r
            if ((k in ns) && (z in ns) && e > 0) a[++n] = (ns[k] - ns[z]) / e }
        return med(a, n) }
    function counts(s, m,   r, k, t, l) { t = 0; l = 0
        for (r = 1; r <= R; r++) { k = s SUBSEP m SUBSEP r; if (k in shown) { t += shown[k] + lost[k]; l += lost[k] } }
        return t " / " l }
    END {
        n = split(streams, S, " ")
        ev["syscall"] = "failing openat, emitted"; ev["filtered"] = "getppid, filtered out"
        ev["disk"] = "block request"; ev["sched"] = "context switch (none over 10 ms)"; ev["tcp"] = "TCP state change"
        for (i = 1; i <= n; i++) { s = S[i]; e = epo(s); ka = added(s, "kerno", e); ba = added(s, "bpftrace", e)
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, ev[s], f(col(s, "none")), f(col(s, "kerno")),
                f(col(s, "bpftrace")), (e == "" ? "-" : sprintf("%.2f", e)), f(ka), f(ba),
                ((ka != "" && ba != "" && ba > 0) ? sprintf("%.2f", ka / ba) : "-"), counts(s, "kerno"), counts(s, "bpftrace") }
    }' "$RAW"
    echo
    echo "In-kernel time per program run (kernel.bpf_stats_enabled, one phase per stream after the rounds):"
    echo
    echo "| stream | agent | program | runs | ns per run |"
    echo "|---|---|---|---|---|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$ATTR"
    echo
    echo "The same per operation of the workload (all the stream's programs; the kernel's accounting adds"
    echo "about 50 ns to each run, for both alike):"
    echo
    echo "| stream | Kerno in-kernel ns per op | bpftrace in-kernel ns per op | Kerno/bpftrace |"
    echo "|---|---|---|---|"
    awk -F'\t' -v streams="${STREAMS[*]}" '
    FNR == NR { ops[$1, $2] = $3; next }
    FNR > 1 { t[$1, $2] += $4 * $5 }
    END { n = split(streams, S, " ")
        for (i = 1; i <= n; i++) { s = S[i]
            k = ((s, "kerno") in ops && ops[s, "kerno"] > 0) ? t[s, "kerno"] / ops[s, "kerno"] : ""
            b = ((s, "bpftrace") in ops && ops[s, "bpftrace"] > 0) ? t[s, "bpftrace"] / ops[s, "bpftrace"] : ""
            printf "| %s | %s | %s | %s |\n", s, (k == "" ? "-" : sprintf("%.0f", k)), (b == "" ? "-" : sprintf("%.0f", b)),
                ((k != "" && b != "" && b > 0) ? sprintf("%.2f", k / b) : "-") } }' "$WORK/attr-ops" "$ATTR"
    echo
    echo "Programs attached per consumer:"
    echo
    sort -u "$WORK/attached" | awk -F'\t' '{ printf "- %s, %s: %s\n", $1, $2, $3 }'
    if [ ${#NOISY[@]} -gt 0 ]; then
        echo
        echo "Disturbed phases (the machine was busy before them; rerun when it is idle):"
        for x in "${NOISY[@]}"; do echo "- $x"; done
    fi
} > "$SUMMARY"
cat "$SUMMARY"
log "raw numbers: $RAW, $ATTR; this table: $SUMMARY"
