use super::*;

const NOW: u64 = 1_790_000_000_000;

fn explain(text: &str) -> Explanation {
    explain_text(text.as_bytes(), "test", &ExplainOptions::offline(NOW))
}

/// A whole memcg OOM report as this machine's kernel (6.18, cgroup v1) printed it.
const OOM_REPORT: &str = include_str!("../../tests/data/oom-report-memcg-v1.txt");

#[test]
fn a_whole_oom_report_is_one_event_with_the_victim_and_the_memcg() {
    let e = explain(OOM_REPORT);
    assert_eq!(e.lines, 79);
    assert_eq!(e.explained_lines, e.lines, "unknown: {:#?}", e.unknown);
    assert!(e.unknown.is_empty());
    let [g] = &e.groups[..] else {
        panic!("{:#?}", e.groups)
    };
    assert_eq!(g.pattern, "oom-killed-memcg");
    assert_eq!(g.count, 1);
    let ev = &g.events[0];
    assert_eq!(
        ev.parts,
        [
            "oom-invoked",
            "memcg-usage-at-limit",
            "oom-summary",
            "oom-killed-memcg"
        ]
    );
    let f = &ev.fields;
    assert_eq!(f.pid, Some(8848));
    assert_eq!(f.comm.as_deref(), Some("hog"));
    assert_eq!(f.cgroup.as_deref(), Some("/kerno-explain-probe"));
    assert_eq!(f.other["usage_kb"], "32768");
    assert_eq!(f.other["limit_kb"], "32768");
    assert_eq!(f.other["trigger"], "hog");
    assert_eq!(f.other["trigger_pid"], "8848");
    assert_eq!(f.other["constraint"], "CONSTRAINT_MEMCG");
    assert!(
        ev.headline
            .starts_with("Memory cgroup out of memory: Killed process 8848")
    );
    assert_eq!(ev.time.boot_secs, Some(211.488878));
    // The checks name the cgroup.
    assert!(g.check[0].contains("/sys/fs/cgroup/memory/kerno-explain-probe/memory.limit_in_bytes"));
    assert_eq!(
        g.summary,
        "1 OOM kill in cgroup /kerno-explain-probe, at 211.5 s after boot"
    );
}

#[test]
fn repeated_kills_in_a_pod_are_counted_with_the_last_time() {
    let uid = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
    let cg = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
        uid.replace('-', "_"),
        "9a8b7c6d".repeat(8)
    );
    let mut text = String::new();
    // Three kills, 10, 7 and 4 minutes before NOW (ISO stamps with a zone).
    for (i, min) in [10u64, 7, 4].iter().enumerate() {
        let t = (NOW / 1000 - min * 60) as i64;
        let stamp = {
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            let ymd = crate::render::utc((days * 86_400 * 1000) as u64);
            format!(
                "{}T{:02}:{:02}:{:02}Z",
                &ymd[..10],
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )
        };
        let pid = 4000 + i;
        text.push_str(&format!(
            "{stamp} node-1 kernel: oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg={cg},task_memcg={cg},task=java,pid={pid},uid=1000\n\
             {stamp} node-1 kernel: Memory cgroup out of memory: Killed process {pid} (java) total-vm:4194304kB, anon-rss:1043788kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:2448kB oom_score_adj:936\n"
        ));
    }
    let e = explain(&text);
    let [g] = &e.groups[..] else {
        panic!("{:#?}", e.groups)
    };
    assert_eq!(g.count, 3);
    assert_eq!(g.events.len(), 3);
    assert_eq!(
        g.events.iter().map(|e| e.fields.pid).collect::<Vec<_>>(),
        [Some(4000), Some(4001), Some(4002)]
    );
    assert_eq!(g.subject, Some(("pod".to_string(), format!("pod{uid}"))));
    assert_eq!(
        g.summary,
        format!("3 OOM kills in pod{uid} (container 9a8b7c6d9a8b), last 4 min ago")
    );
    let a = g.events[0].fields.attribution.as_ref().unwrap();
    assert_eq!(a.qos.as_deref(), Some("burstable"));
    assert_eq!(a.runtime.as_deref(), Some("containerd"));
}

const OOPS: &str = "\
[  742.118303] BUG: kernel NULL pointer dereference, address: 0000000000000008
[  742.118310] #PF: supervisor write access in kernel mode
[  742.118312] #PF: error_code(0x0002) - not-present page
[  742.118314] PGD 0 P4D 0
[  742.118410] Oops: 0002 [#1] PREEMPT SMP PTI
[  742.118420] CPU: 2 UID: 0 PID: 1234 Comm: modprobe Tainted: G           OE      6.18.44 #1
[  742.118425] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)
[  742.118430] RIP: 0010:buggy_init+0x15/0x30 [buggy]
[  742.118433] Code: 48 c7 c7 00 00 00 00 e8 00 00 00 00 <c7> 04 25 08 00 00 00 01 00 00 00
[  742.118440] RSP: 0018:ffffc90000a3fd88 EFLAGS: 00010246
[  742.118441] RAX: 0000000000000000 RBX: 0000000000000000 RCX: 0000000000000000
[  742.118445] Call Trace:
[  742.118446]  <TASK>
[  742.118450]  ? __die+0x23/0x70
[  742.118452]  do_one_initcall+0x58/0x300
[  742.118460]  </TASK>
[  742.118462] Modules linked in: buggy(OE+) xt_conntrack nf_nat
[  742.118470] CR2: 0000000000000008
[  742.118480] ---[ end trace 0000000000000000 ]---
[  742.130000] some driver: unrelated message afterwards
";

#[test]
fn an_oops_with_its_stack_is_one_event_naming_the_function_and_module() {
    let e = explain(OOPS);
    let [g] = &e.groups[..] else {
        panic!("{:#?}", e.groups)
    };
    assert_eq!(g.pattern, "null-deref");
    let ev = &g.events[0];
    assert_eq!(ev.parts, ["null-deref", "oops"]);
    assert_eq!(ev.fields.pid, Some(1234));
    assert_eq!(ev.fields.comm.as_deref(), Some("modprobe"));
    assert_eq!(ev.fields.other["function"], "buggy_init");
    assert_eq!(ev.fields.other["module"], "buggy");
    assert_eq!(ev.fields.other["address"], "0000000000000008");
    assert_eq!(ev.lines.len(), 19);
    assert_eq!(
        g.summary,
        "1 kernel NULL dereference in module buggy, at 742.1 s after boot"
    );
    // The line after the trailer is not part of it.
    assert_eq!(e.unknown.len(), 1);
    assert_eq!(
        e.unknown[0].text,
        "some driver: unrelated message afterwards"
    );
    assert_eq!(e.explained_lines, 19);
}

#[test]
fn hung_tasks_each_with_their_stack() {
    let text = "\
[ 1474.334201] INFO: task jbd2/sda1-8:412 blocked for more than 122 seconds.
[ 1474.334210]       Not tainted 6.18.44 #1
[ 1474.334212] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.
[ 1474.334215] task:jbd2/sda1-8     state:D stack:0     pid:412   tgid:412   ppid:2      flags:0x00004000
[ 1474.334220] Call Trace:
[ 1474.334221]  <TASK>
[ 1474.334225]  __schedule+0x3c4/0xe70
[ 1474.334230]  io_schedule+0x46/0x70
[ 1474.334240]  </TASK>
[ 1474.334301] INFO: task postgres:3321 blocked for more than 122 seconds.
[ 1474.334305]       Not tainted 6.18.44 #1
[ 1474.334310] task:postgres        state:D stack:0     pid:3321  tgid:3321  ppid:1      flags:0x00000002
[ 1474.334315] Call Trace:
[ 1474.334320]  jbd2_log_wait_commit+0xb1/0x120
";
    let e = explain(text);
    assert!(e.unknown.is_empty(), "{:#?}", e.unknown);
    assert_eq!(e.groups.len(), 2);
    let pids: Vec<_> = e
        .groups
        .iter()
        .map(|g| (g.pattern.as_str(), g.events[0].fields.pid))
        .collect();
    assert!(pids.contains(&("hung-task", Some(412))), "{pids:?}");
    assert!(pids.contains(&("hung-task", Some(3321))), "{pids:?}");
}

#[test]
fn a_suppression_notice_counts_for_the_message_after_it() {
    let text = "\
[ 1122.334455] I/O error, dev loop7, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2
[ 1127.334400] blk_print_req_error: 14 callbacks suppressed
[ 1127.334455] I/O error, dev loop7, sector 4096 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2
";
    let e = explain(text);
    let [g] = &e.groups[..] else {
        panic!("{:#?}", e.groups)
    };
    assert_eq!(g.pattern, "blk-io-error");
    assert_eq!(g.events.len(), 2);
    assert_eq!(g.count, 16);
    assert_eq!(g.events[1].suppressed, 14);
    assert_eq!(
        g.summary,
        "16 I/O errors on loop7, last at 1127.3 s after boot"
    );
    assert_eq!(e.explained_lines, 3);
}

#[test]
fn a_warning_keeps_its_cut_here_line() {
    let text = "\
[ 8008.000001] ------------[ cut here ]------------
[ 8008.000008] NETDEV WATCHDOG: eth0 (e1000e): transmit queue 0 timed out 5120 ms
[ 8008.000010] WARNING: CPU: 1 PID: 0 at net/sched/sch_generic.c:525 dev_watchdog+0x20f/0x250
[ 8008.000020] Modules linked in: e1000e
[ 8008.000030] RIP: 0010:dev_watchdog+0x20f/0x250
[ 8008.000040] ---[ end trace 0000000000000000 ]---
";
    let e = explain(text);
    assert!(e.unknown.is_empty(), "{:#?}", e.unknown);
    assert_eq!(e.explained_lines, 6);
    // The watchdog line and the WARNING it comes with: two reports of one incident.
    assert_eq!(e.groups.len(), 2, "{:#?}", e.groups);
    let wd = e
        .groups
        .iter()
        .find(|g| g.pattern == "netdev-watchdog")
        .unwrap();
    assert_eq!(
        wd.events[0].lines[0],
        "------------[ cut here ]------------"
    );
    assert_eq!(wd.events[0].fields.device.as_deref(), Some("eth0"));
}

#[test]
fn unknown_lines_are_kept_once_with_their_count() {
    let e = explain("[1.0] hello\n[2.0] hello\n[3.0] world\n\n   \n");
    assert!(e.groups.is_empty());
    assert_eq!(e.lines, 3);
    assert_eq!(e.explained_lines, 0);
    assert_eq!(
        e.unknown,
        [
            Unknown {
                text: "hello".into(),
                count: 2
            },
            Unknown {
                text: "world".into(),
                count: 1
            }
        ]
    );
    let text = pretty(&e);
    assert!(text.contains("No known kernel message"), "{text}");
    assert!(text.contains("   2x hello"), "{text}");
}

#[test]
fn binary_garbage_is_counted_and_skipped_without_panic() {
    let mut bytes: Vec<u8> = Vec::new();
    // Deterministic pseudo-random bytes (xorshift), newlines included.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x >> 24) as u8);
    }
    let e = explain_text(&bytes, "garbage", &ExplainOptions::offline(NOW));
    assert!(e.binary_lines > 0);
    assert!(e.groups.is_empty());
    let _ = pretty(&e);
    let _ = serde_json::to_string(&e).unwrap();
    // Garbage around a real line does not hide it.
    let mut mixed = bytes[..5000].to_vec();
    mixed.extend_from_slice(b"\n[ 2002.300400] nf_conntrack: table full, dropping packet\n");
    mixed.extend_from_slice(&bytes[5000..9000]);
    let e = explain_text(&mixed, "mixed", &ExplainOptions::offline(NOW));
    assert!(e.groups.iter().any(|g| g.pattern == "conntrack-table-full"));
    // Truncated and odd UTF-8, very long lines.
    for s in [
        &b"\xff\xfe\xfd"[..],
        b"[",
        b"[ 12.3",
        b"<9999999999999999999999>",
        b"6,1,99999999999999999999999,-;x",
        b"Mar 99 99:99:99 h kernel: x",
        b"[Sat Foo 99 99:99:99 2021] x",
        b"2021-13-45T99:99:99+99:99 x",
    ] {
        let _ = explain_text(s, "odd", &ExplainOptions::offline(NOW));
    }
    let long = "x".repeat(1_000_000);
    let e = explain(&long);
    assert!(e.unknown[0].text.len() < 3000);
}

#[test]
fn check_commands_fill_known_fields_and_mark_unknown_ones() {
    let f = Fields {
        device: Some("sda".into()),
        ..Fields::default()
    };
    assert_eq!(
        fill("smartctl -a /dev/{device}", &f),
        "smartctl -a /dev/sda"
    );
    assert_eq!(fill("cat /proc/{pid}/stack", &f), "cat /proc/<pid>/stack");
    assert_eq!(fill("awk '{print $1}'", &f), "awk '{print $1}'");
}
