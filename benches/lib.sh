# Shared by benches/overhead.sh and benches/streams.sh (sourced, not run): logging, what the
# machine needs, the work dir and its cleanup, the probes other processes have attached,
# waiting for a quiet machine, stopping an agent, and the kernel's per-program run times.
#
# The caller sets: LOG_NAME (the log prefix), FORCE (0/1), QUIET_BUSY_PCT, QUIET_WAIT_S,
# FOREIGN_WAIT_S, and AGENT_PID (the measured process, or ""); make_work_dir sets WORK.

log() { printf '[%s %s] %s\n' "$LOG_NAME" "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Program ids a process has attached: bpf links (tp_btf, and tracepoints through perf links)
# from its fdinfo, and perf-event attachments (bpftrace's tracepoints) from bpftool.
attached_ids() {
    local pid=$1 f
    for f in /proc/"$pid"/fdinfo/*; do
        grep -q '^link_type:' "$f" 2>/dev/null && sed -n 's/^prog_id:[[:space:]]*//p' "$f" 2>/dev/null
    done
    bpftool -j perf list 2>/dev/null | jq -r --argjson p "$pid" '.[] | select(.pid == $p) | .prog_id'
}

prog_names() { # ids on stdin -> names
    local ids
    ids=$(sort -un | paste -sd, -)
    [ -n "$ids" ] || return 0
    bpftool -j prog show | jq -r --argjson ids "[$ids]" '.[] | select(.id as $i | $ids | any(. == $i)) | .name'
}

# Tracing programs of any owner: on an idle machine, none.
tracing_progs() {
    bpftool -j prog show | jq -r '.[] | select(.type | test("^(tracepoint|raw_tracepoint|tracing|kprobe|perf_event)$")) | "\(.id):\(.name)"'
}

# Tracing programs attached by anyone but `pid` (all of them when no pid is given).
foreign_progs() {
    local ours=""
    [ -n "${1:-}" ] && ours=$(attached_ids "$1" | sort -un | paste -sd, -)
    bpftool -j prog show | jq -r --argjson ours "[${ours}]" '.[] |
        select(.type | test("^(tracepoint|raw_tracepoint|tracing|kprobe|perf_event)$")) |
        select(.id as $i | $ours | any(. == $i) | not) | "\(.id):\(.name)"'
}

WAITED_S=0   # time spent waiting for a quiet machine, left out of the run time
wait_no_foreign_probes() {
    local waited=0 found
    while found=$(tracing_progs) && [ -n "$found" ]; do
        if [ "$FORCE" = 1 ]; then
            log "warning: foreign tracing programs attached, measuring anyway (--force): $(echo $found)"
            return 0
        fi
        [ "$waited" -ge "$FOREIGN_WAIT_S" ] && die "someone else's tracing programs stay attached: $(echo $found) (stop them, or --force)"
        [ $((waited % 30)) -eq 0 ] && log "waiting for foreign tracing programs to go: $(echo $found)"
        sleep 2; waited=$((waited + 2)); WAITED_S=$((WAITED_S + 2))
    done
}

# Busy percentage of all CPUs over one second, from /proc/stat.
busy_pct() {
    local a b
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x); split(b, y); t = 0
        for (i = 2; i <= n; i++) t += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.0f", (t > 0) ? 100 * (t - idle) / t : 0 }'
}

# Wait until the machine is quiet (another build or test on a 2-core machine would swamp the
# numbers); prints the busy percentage measured last.
wait_quiet() {
    local waited=0 b
    while b=$(busy_pct) && [ "$b" -gt "$QUIET_BUSY_PCT" ]; do
        [ "$waited" -ge "$QUIET_WAIT_S" ] && break
        [ $((waited % 20)) -eq 0 ] && log "machine busy (${b}% CPU), waiting (up to ${QUIET_WAIT_S}s)"
        sleep 1; waited=$((waited + 2))
    done
    echo "$waited" >> "$WORK/quiet-waits"
    echo "$b"
}

# Stop the measured process: INT as Ctrl-C would; TERM when INT is ignored (a script started
# in the background hands SIG_IGN for INT down to its children); KILL as the last resort.
stop_agent() {
    [ -n "$AGENT_PID" ] || return 0
    local pid=$AGENT_PID i sig
    AGENT_PID=""
    for sig in INT TERM KILL; do
        kill -"$sig" "$pid" 2>/dev/null || break
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break 2
            sleep 0.1
        done
    done
    wait "$pid" 2>/dev/null || true
}

# Completed block requests on device `dev` (reads + writes + discards + flushes).
blk_requests() { # dev
    awk -v d="$1" '$3 == d { print $4 + $8 + $15 + $19 }' /proc/diskstats
}

# The whole disk under a directory (the partition's parent), as /proc/diskstats names it.
blk_dev_of() { # dir
    local dev
    dev=$(lsblk -no PKNAME "$(df --output=source "$1" | tail -1)" 2>/dev/null | head -1)
    [ -n "$dev" ] || dev=$(basename "$(df --output=source "$1" | tail -1)")
    grep -q " $dev " /proc/diskstats || die "cannot find the block device of $1 ($dev)"
    echo "$dev"
}

# Root, the tools, two CPUs (`who` on CPU 0, workloads on CPU 1) and tracefs mounted.
check_machine() { # who
    local t
    [ "$(id -u)" -eq 0 ] || die "run as root (the probes need it)"
    for t in cc taskset fio bpftool bpftrace jq; do
        command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh installs it)"
    done
    [ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs ($1 on CPU 0, workloads on CPU 1)"
    mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
}

# WORK: a fresh /var/tmp/NAME.XXXXXX (on the root disk, not a tmpfs /tmp, so fio makes real
# block I/O). On exit, `stop` (a command) runs, kernel.bpf_stats_enabled is put back as it
# was, and WORK is removed.
make_work_dir() { # name stop
    WORK=$(mktemp -d "/var/tmp/$1.XXXXXX")
    WORK_STOP=$2
    STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled)
    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT TERM
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "$WORK_STOP" || true
    echo "$STATS_BEFORE" > /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}

# The fio file the block workloads write into, laid out once before the rounds.
fio_layout() {
    log "laying out the fio file and warming up"
    taskset -c "$WORK_CPU" fio --name=layout --filename="$WORK/fio.dat" --size=256m --rw=write --bs=1m \
        --create_only=1 >/dev/null
}

# Per program of `ids` (comma-separated) that ran between two `bpftool -j prog show`
# snapshots: the leading `fields`, name, runs, ns per run (one decimal), tab-separated.
program_runs() { # ids before.json after.json fields...
    local ids=$1 a=$2 b=$3
    shift 3
    jq -r -n --argjson ids "[$ids]" --slurpfile a "$a" --slurpfile b "$b" '
        ($a[0] | map({key: (.id | tostring), value: .}) | from_entries) as $old |
        $b[0][] | select(.id as $i | $ids | any(. == $i)) |
        (.run_cnt // 0) as $c1 | ($old[.id | tostring].run_cnt // 0) as $c0 |
        (.run_time_ns // 0) as $t1 | ($old[.id | tostring].run_time_ns // 0) as $t0 |
        select($c1 - $c0 > 0) |
        $ARGS.positional + [.name, ($c1 - $c0), (($t1 - $t0) / ($c1 - $c0) * 10 | round / 10)] | @tsv' \
        --args "$@"
}

# The machine, for a summary's first line: CPUs, their model, the kernel.
machine() {
    echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), kernel $(uname -r)"
}

# Seconds wait_quiet spent waiting, over the whole run.
quiet_waited() {
    awk '{ s += $1 } END { print s + 0 }' "$WORK/quiet-waits" 2>/dev/null || echo 0
}
