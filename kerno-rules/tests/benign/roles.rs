//! The workloads written in Rust, each run in its own process (this test binary
//! re-executed; see [`super::fixture::Child::role`]) so Kerno sees it as any other process
//! and not as the collector itself. Each reports progress through counter files in its
//! scratch directory.

use std::{
    collections::VecDeque,
    ffi::CString,
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::fixture::write_counters;

/// Run the role named by the first of `args` (the rest are its arguments). Never returns
/// for the long-running roles: the case kills them.
pub fn run(args: &[String]) {
    let (role, rest) = args.split_first().expect("a role name");
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    name_process(&format!("kb-{role}"));
    match role.as_str() {
        "http-server" => http_server(Path::new(rest[0])),
        "http-client" => http_client(
            Path::new(rest[0]),
            rest[1],
            num(rest[2]),
            num(rest[3]),
            num(rest[4]),
            num(rest[5]),
        ),
        "thread-pool" => thread_pool(Path::new(rest[0]), num(rest[1]) as usize),
        "log-rotate" => log_rotate(Path::new(rest[0])),
        "fan-out" => fan_out(Path::new(rest[0]), num(rest[1]) as usize, num(rest[2])),
        "scanner" => scanner(Path::new(rest[0]), Path::new(rest[1]), num(rest[2])),
        "tcp-sink" => tcp_sink(Path::new(rest[0]), rest[1]),
        "tcp-source" => tcp_source(
            Path::new(rest[0]),
            rest[1],
            num(rest[2]),
            num(rest[3]),
            num(rest[4]),
        ),
        "duty-cycle" => duty_cycle(Path::new(rest[0]), num(rest[1]), num(rest[2])),
        other => panic!("unknown workload role {other:?}"),
    }
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// Give the process a name the findings show: the main thread's (what `/proc/<pid>/comm`
/// says) and this thread's, which the threads it starts inherit (the harness may run the
/// entry point on a thread of its own).
fn name_process(name: &str) {
    let name = &name[..name.len().min(15)];
    let _ = fs::write("/proc/self/comm", name);
    let c = CString::new(name).expect("no NUL in a role name");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Write `counters()` to `file` every 200 ms, from a thread, for as long as the process lives.
fn report_every(file: PathBuf, counters: impl Fn() -> Vec<u64> + Send + 'static) {
    std::thread::spawn(move || {
        loop {
            write_counters(&file, &counters());
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// Sleep so that `done` items since `start` keep to `per_sec`.
fn pace(start: Instant, done: u64, per_sec: u64) {
    let due = start + Duration::from_secs_f64(done as f64 / per_sec.max(1) as f64);
    if let Some(d) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

// ---- HTTP ----------------------------------------------------------------------------

const BODY: &[u8] = &[b'k'; 1024];

/// An HTTP/1.1 server on 127.0.0.1 (a thread per keep-alive connection); writes its port to
/// `port` and the requests it served to `served`.
fn http_server(dir: &Path) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let served = Arc::new(AtomicU64::new(0));
    let s = served.clone();
    report_every(dir.join("served"), move || vec![s.load(Ordering::Relaxed)]);
    write_counters(
        &dir.join("port"),
        &[u64::from(l.local_addr().unwrap().port())],
    );
    for conn in l.incoming() {
        let Ok(conn) = conn else { continue };
        let served = served.clone();
        std::thread::spawn(move || {
            let mut w = conn.try_clone().expect("clone the connection");
            let mut r = BufReader::new(conn);
            let mut line = String::new();
            loop {
                // The request line and headers, up to the blank line.
                let mut got = false;
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => got = true,
                    }
                }
                if !got {
                    continue;
                }
                // One write per response, as a buffered server does (a second small write
                // would wait for the client's delayed ACK: Nagle).
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                    BODY.len()
                )
                .into_bytes();
                resp.extend_from_slice(BODY);
                if w.write_all(&resp).is_err() {
                    return;
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// `conns` keep-alive clients, each sending `per_sec` requests a second to 127.0.0.1:`port`,
/// for at most `max_secs` or `max_requests` in all; writes `ok errors` to `received`.
fn http_client(dir: &Path, port: &str, conns: u64, per_sec: u64, max_secs: u64, max_requests: u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (o, e) = (ok.clone(), errors.clone());
    let file = dir.join("received");
    report_every(file.clone(), move || {
        vec![o.load(Ordering::Relaxed), e.load(Ordering::Relaxed)]
    });
    let addr = format!("127.0.0.1:{port}");
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (ok, errors, addr) = (ok.clone(), errors.clone(), addr.clone());
            let per_conn = max_requests / conns.max(1);
            std::thread::spawn(move || {
                let start = Instant::now();
                let Ok(conn) = TcpStream::connect(&addr) else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let mut w = conn.try_clone().expect("clone the connection");
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                let mut body = vec![0u8; BODY.len()];
                for n in 0..per_conn {
                    if start.elapsed() >= Duration::from_secs(max_secs) {
                        break;
                    }
                    if w.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                        .is_err()
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    let mut len = 0usize;
                    let mut status_ok = false;
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {
                                if line.starts_with("HTTP/1.1 200") {
                                    status_ok = true;
                                }
                                if let Some(v) = line.strip_prefix("Content-Length: ") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                    }
                    body.resize(len, 0);
                    if !status_ok || r.read_exact(&mut body).is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    ok.fetch_add(1, Ordering::Relaxed);
                    pace(start, n + 1, per_sec);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    write_counters(
        &file,
        &[ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed)],
    );
    // Stay until killed, so the last counters are not raced by the reporter thread.
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

// ---- thread pool ---------------------------------------------------------------------

/// The names of the pool's condition-variable and epoll workers (their `comm`).
pub const POOL_FUTEX: &str = "kb-pool-futex";
/// See [`POOL_FUTEX`].
pub const POOL_EPOLL: &str = "kb-pool-epoll";

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("start a pool thread");
}

/// `threads` idle workers, half waiting on a condition variable (futex) for jobs the main
/// thread hands out now and then, half in `epoll_wait` on a pipe nobody writes (each with a
/// timeout about a second, as event loops do). Writes `ready` once all have started.
fn thread_pool(dir: &Path, threads: usize) {
    let jobs = Arc::new((Mutex::new(VecDeque::<u64>::new()), Condvar::new()));
    let started = Arc::new(AtomicU64::new(0));
    for i in 0..threads / 2 {
        let (jobs, started) = (jobs.clone(), started.clone());
        spawn_named(POOL_FUTEX, move || {
            started.fetch_add(1, Ordering::Relaxed);
            let (q, cv) = &*jobs;
            let mut q = q.lock().unwrap();
            loop {
                let timeout = Duration::from_millis(800 + (i as u64 * 37) % 400);
                q = cv.wait_timeout(q, timeout).unwrap().0;
                if let Some(job) = q.pop_front() {
                    std::hint::black_box(job.wrapping_mul(31));
                }
            }
        });
    }
    for i in 0..threads - threads / 2 {
        let started = started.clone();
        spawn_named(POOL_EPOLL, move || {
            let mut fds = [0; 2];
            // SAFETY: plain syscalls on descriptors this thread owns; `ev` and `out` are
            // valid for the calls.
            unsafe {
                assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
                let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
                assert!(ep >= 0, "epoll_create1");
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: 0,
                };
                assert_eq!(libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fds[0], &mut ev), 0);
                started.fetch_add(1, Ordering::Relaxed);
                let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
                let timeout = 800 + (i as i32 * 41) % 400;
                loop {
                    libc::epoll_wait(ep, out.as_mut_ptr(), out.len() as i32, timeout);
                }
            }
        });
    }
    while started.load(Ordering::Relaxed) < threads as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    write_counters(&dir.join("ready"), &[threads as u64]);
    let (q, cv) = &*jobs;
    for n in 0u64.. {
        std::thread::sleep(Duration::from_millis(50));
        q.lock().unwrap().push_back(n);
        cv.notify_one();
    }
}

// ---- log rotation --------------------------------------------------------------------

/// Three log files written ten times a second; every second each is renamed to `.1` and
/// reopened, as after logrotate's signal. Writes the number of reopen rounds to `reopens`.
fn log_rotate(dir: &Path) {
    let names = ["app.log", "access.log", "error.log"];
    let open = |n: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(n))
            .expect("open a log file")
    };
    let mut files: Vec<File> = names.iter().map(|n| open(n)).collect();
    let mut reopens = 0u64;
    let mut last = Instant::now();
    for line in 0u64.. {
        for f in &mut files {
            let _ = writeln!(f, "line {line}: request handled in 3 ms");
        }
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            files.clear(); // close all
            for n in names {
                let _ = fs::rename(dir.join(n), dir.join(format!("{n}.1")));
            }
            files = names.iter().map(|n| open(n)).collect();
            reopens += 1;
            write_counters(&dir.join("reopens"), &[reopens]);
        }
    }
}

// ---- cron fan-out --------------------------------------------------------------------

/// After `delay_ms`, start `n` short jobs at once (each an `sh` appending its pid to `ran`)
/// and wait for all; writes `ok failed` to `done`.
fn fan_out(dir: &Path, n: usize, delay_ms: u64) {
    std::thread::sleep(Duration::from_millis(delay_ms));
    let ran = dir.join("ran");
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new("/bin/sh")
                .arg("-c")
                .arg("echo $$ >> \"$1\"")
                .arg("job")
                .arg(&ran)
                .spawn()
        })
        .collect();
    let (mut ok, mut failed) = (0u64, 0u64);
    for c in children {
        match c.and_then(|mut c| c.wait()) {
            Ok(st) if st.success() => ok += 1,
            _ => failed += 1,
        }
    }
    write_counters(&dir.join("done"), &[ok, failed]);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

// ---- file scanner --------------------------------------------------------------------

/// What a scan pass counted.
#[derive(Default)]
struct Scanned {
    files: u64,
    enoent: u64,
    eloop: u64,
    enxio: u64,
    other: u64,
    passes: u64,
    matches: u64,
}

/// Scan `tree` again and again, as an indexer or a virus scanner does: list every
/// directory, open every other entry (following links, non-blocking so FIFOs do not hang it)
/// and read regular files looking for a word; at most `per_sec` entries a second. Dangling
/// links fail with ENOENT, link loops with ELOOP, sockets with ENXIO. Writes
/// `files enoent eloop enxio other passes matches` to `scanned`.
fn scanner(tree: &Path, dir: &Path, per_sec: u64) {
    let stats = Arc::new(Mutex::new(Scanned::default()));
    let s = stats.clone();
    report_every(dir.join("scanned"), move || {
        let s = s.lock().unwrap();
        vec![
            s.files, s.enoent, s.eloop, s.enxio, s.other, s.passes, s.matches,
        ]
    });
    let start = Instant::now();
    let mut entries = 0u64;
    let mut buf = Vec::new();
    loop {
        let mut stack = vec![tree.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                    continue;
                }
                entries += 1;
                pace(start, entries, per_sec);
                let opened = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&p);
                let mut s = stats.lock().unwrap();
                match opened {
                    Ok(mut f) => {
                        s.files += 1;
                        if f.metadata().is_ok_and(|m| m.is_file()) {
                            buf.clear();
                            if f.read_to_end(&mut buf).is_ok()
                                && buf.windows(6).any(|w| w == b"needle")
                            {
                                s.matches += 1;
                            }
                        }
                    }
                    Err(err) => match err.raw_os_error() {
                        Some(libc::ENOENT) => s.enoent += 1,
                        Some(libc::ELOOP) => s.eloop += 1,
                        Some(libc::ENXIO) => s.enxio += 1,
                        _ if err.kind() == ErrorKind::Interrupted => {}
                        _ => s.other += 1,
                    },
                }
            }
        }
        stats.lock().unwrap().passes += 1;
    }
}

// ---- TCP bulk transfer ---------------------------------------------------------------

const TCP_PORT: u16 = 5201;

/// Accept one connection on `addr`:5201 and read it to the end; writes `1` to `listening`
/// once bound and the bytes received to `received`.
fn tcp_sink(dir: &Path, addr: &str) {
    let l = TcpListener::bind((addr, TCP_PORT)).expect("bind the sink");
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    report_every(dir.join("received"), move || {
        vec![g.load(Ordering::Relaxed)]
    });
    write_counters(&dir.join("listening"), &[1]);
    let (mut conn, _) = l.accept().expect("accept the source");
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("sink read: {e}"),
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Send to `addr`:5201 at `mib_per_sec`, at most `max_mib` MiB or `max_secs`; writes the
/// bytes sent to `sent`.
fn tcp_source(dir: &Path, addr: &str, mib_per_sec: u64, max_mib: u64, max_secs: u64) {
    let mut conn = TcpStream::connect((addr, TCP_PORT)).expect("connect to the sink");
    let sent = Arc::new(AtomicU64::new(0));
    let s = sent.clone();
    report_every(dir.join("sent"), move || vec![s.load(Ordering::Relaxed)]);
    const CHUNK: usize = 64 * 1024;
    let chunk = vec![0x5au8; CHUNK];
    let start = Instant::now();
    let chunks_per_sec = mib_per_sec * 1024 * 1024 / CHUNK as u64;
    for n in 0..max_mib * 1024 * 1024 / CHUNK as u64 {
        if start.elapsed() >= Duration::from_secs(max_secs) {
            break;
        }
        conn.write_all(&chunk).expect("send to the sink");
        sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
        pace(start, n + 1, chunks_per_sec);
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A service that computes for `busy_us` of CPU time, then sleeps `idle_us`, forever (a
/// steady share of one CPU); counts its rounds in `rounds`.
fn duty_cycle(dir: &Path, busy_us: u64, idle_us: u64) {
    let mut rounds = 0u64;
    let mut last = Instant::now();
    let mut x = 0u64;
    loop {
        let until = thread_cpu() + Duration::from_micros(busy_us);
        while thread_cpu() < until {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        std::thread::sleep(Duration::from_micros(idle_us));
        rounds += 1;
        if last.elapsed() >= Duration::from_millis(500) {
            write_counters(&dir.join("rounds"), &[rounds]);
            last = Instant::now();
        }
    }
}
