#!/bin/busybox sh
# /init of a scripts/vmtest.sh guest (busybox). Runs the checks and writes every result to
# the second serial port (/dev/ttyS1) as sections the host parses:
#
#   @@kerno-vmtest begin NAME
#   ...raw output...
#   @@kerno-vmtest end NAME rc=N
#
# The host decides pass or fail; the guest only runs things and reports what it saw.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /run /sys/kernel/tracing /sys/fs/bpf /sys/fs/cgroup
mount -t tmpfs run /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
for m in $(cat /lib/modules/load 2>/dev/null); do insmod "$m" || echo "insmod $m failed"; done
hostname kerno-vm
echo kerno-vm > /etc/hostname
ulimit -n 1024

OUT=/dev/ttyS1
stty -F "$OUT" raw -echo 2>/dev/null
M=@@kerno-vmtest
emit() { # emit NAME RC FILE
    { echo "$M begin $1"; cat "$3"; echo; echo "$M end $1 rc=$2"; } > "$OUT"
}
run() { # run NAME CMD...: run it, emit its stdout+stderr and exit status
    name=$1; shift
    "$@" > /tmp/run.out 2>&1
    emit "$name" $? /tmp/run.out
}
progs() { # the kernel's view: programs, links, perf attachments and maps, as JSON
    run "$1-prog" bpftool -j prog show
    run "$1-link" bpftool -j link show
    run "$1-perf" bpftool -j perf show
    run "$1-map" bpftool -j map show
}

echo "$M guest up" > "$OUT"
run uname uname -r
run btf sh -c 'echo "/sys/kernel/btf/vmlinux: $(wc -c < /sys/kernel/btf/vmlinux) bytes"'
run events cat /sys/kernel/tracing/available_events
bpftool btf dump file /sys/kernel/btf/vmlinux 2>&1 | grep -o "TYPEDEF 'btf_trace_[a-z0-9_]*'" \
    | sed "s/TYPEDEF 'btf_trace_//; s/'//" > /tmp/btf_trace
emit btf_trace 0 /tmp/btf_trace
run features sh -c 'for f in /proc/pressure/cpu /proc/net/stat/nf_conntrack \
    /sys/fs/cgroup/cgroup.controllers; do [ -e $f ] && echo "present $f" || echo "absent $f"; done'
run baseline-prog bpftool -j prog show

run preflight /kerno preflight -o json
NPROG=$(grep -c '"name": "tracepoint ' /tmp/run.out)  # the loader's programs, one per tracepoint

# The doctor, with the workload's burst once its probes are attached: the burst must land
# inside the window, so wait until the doctor holds a bpf link per program ($NPROG), or has
# printed its `degraded:` lines (it does so once every domain has attached or failed, just
# before the window starts), then 0.5 s more for the window's first snapshot.
/workload > /tmp/workload.out 2>&1 &
WL=$!
/kerno doctor --standalone -d "${KERNO_VMTEST_DURATION:-3s}" -o json > /tmp/doctor.json 2> /tmp/doctor.err &
DOC=$!
links() { cat /proc/$DOC/fdinfo/* 2>/dev/null | grep -c '^link_type:'; }
i=0
while [ $i -lt 1200 ] && kill -0 $DOC 2>/dev/null; do
    [ "$(links)" -ge "$NPROG" ] && break
    grep -q '^kerno: degraded:' /tmp/doctor.err && break
    i=$((i + 1)); sleep 0.1
done
sleep 0.5
echo "links=$(links) of $NPROG polls=$i" > /tmp/trigger
kill -USR1 $WL
wait $DOC
emit doctor $? /tmp/doctor.json
emit doctor-stderr 0 /tmp/doctor.err
emit trigger 0 /tmp/trigger
{ echo "pid=$WL"; echo "fds=$(ls /proc/$WL/fd | wc -l)"
  grep 'Max open files' /proc/$WL/limits | awk '{print "soft_limit=" $4}'
  cat /tmp/workload.out; } > /tmp/wl
emit workload 0 /tmp/wl
kill -9 $WL

# The agent: /readyz over loopback, every program attached while it runs, nothing after.
/kerno start --listen 127.0.0.1:9090 --socket /run/kerno/agent.sock > /tmp/start.out 2>&1 &
AG=$!
code=none; i=0
while [ $i -lt 1200 ] && kill -0 $AG 2>/dev/null; do
    if wget -q -O /tmp/readyz http://127.0.0.1:9090/readyz 2>/dev/null; then code=200; break; fi
    i=$((i + 1)); sleep 0.25
done
{ echo "status=$code polls=$i"; cat /tmp/readyz 2>/dev/null; } > /tmp/ready
emit readyz 0 /tmp/ready
progs running
kill -TERM $AG
wait $AG
emit start $? /tmp/start.out
# Map and program frees are deferred in the kernel (RCU, work queues): wait for them.
i=0
while [ $i -lt 100 ] && [ "$(bpftool -j prog show)$(bpftool -j map show)" != "[][]" ]; do
    i=$((i + 1)); sleep 0.1
done
progs stopped
echo "$M guest done" > "$OUT"
poweroff -f
