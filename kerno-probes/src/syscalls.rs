//! Syscall names and classes (x86_64; other architectures get numeric names).

use kerno_probes_common::{MAX_SYSCALLS, class};

use crate::syscall_table::X86_64;

/// Syscalls that wait by design: their duration is how long the caller chose to wait (for
/// events, a timer, a child, a lock word, data on a socket or pipe), not a sign of a slow
/// kernel. `read`/`recv*` are here because on sockets, pipes and terminals they wait for a
/// peer; slow reads from disk show up in the block I/O latency instead.
pub const WAIT: &[&str] = &[
    "read",
    "readv",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "accept",
    "accept4",
    "connect",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "futex",
    "futex_waitv",
    "futex_wait",
    "nanosleep",
    "clock_nanosleep",
    "pause",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "wait4",
    "waitid",
    "msgrcv",
    "semop",
    "semtimedop",
    "mq_timedreceive",
    "io_getevents",
    "io_pgetevents",
    "io_uring_enter",
    "flock",
    "sched_yield",
];

/// Syscalls whose success creates at least one file descriptor.
pub const FD_CREATE: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "socket",
    "socketpair",
    "pipe",
    "pipe2",
    "dup",
    "dup2",
    "dup3",
    "accept",
    "accept4",
    "epoll_create",
    "epoll_create1",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "inotify_init",
    "inotify_init1",
    "fanotify_init",
    "memfd_create",
    "memfd_secret",
    "userfaultfd",
    "perf_event_open",
    "pidfd_open",
    "pidfd_getfd",
    "open_by_handle_at",
    "io_uring_setup",
    "fsopen",
    "fsmount",
    "fspick",
    "open_tree",
    "open_tree_attr",
    "mq_open",
];

/// Syscalls whose success closes a file descriptor.
pub const FD_CLOSE: &[&str] = &["close", "close_range"];

/// The name of a syscall number on this architecture (`syscall_<nr>` when unknown).
pub fn name(nr: u32) -> String {
    match X86_64.get(nr as usize) {
        Some(n) if cfg!(target_arch = "x86_64") && !n.is_empty() => (*n).to_string(),
        _ if nr as usize == kerno_probes_common::SYSCALL_OTHER => "other".to_string(),
        _ => format!("syscall_{nr}"),
    }
}

/// The number of a syscall name on this architecture.
pub fn number(name: &str) -> Option<u32> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    X86_64.iter().position(|n| *n == name).map(|i| i as u32)
}

/// The class flags ([`kerno_probes_common::class`]) of a syscall number.
pub fn class_of(nr: u32) -> u8 {
    match classes().get(nr as usize) {
        Some(c) => *c,
        None => compute_class(nr),
    }
}

/// The class flags of `nr` from its name (string comparisons: use [`class_of`]).
fn compute_class(nr: u32) -> u8 {
    let Some(n) = X86_64
        .get(nr as usize)
        .filter(|_| cfg!(target_arch = "x86_64"))
    else {
        return 0;
    };
    let mut c = 0;
    if WAIT.contains(n) {
        c |= class::WAIT;
    }
    if FD_CREATE.contains(n) {
        c |= class::FD_CREATE;
    }
    if FD_CLOSE.contains(n) {
        c |= class::FD_CLOSE;
    }
    if *n == "exit" || *n == "exit_group" {
        c |= class::NO_RETURN;
    }
    c
}

/// [`class_of`] for every syscall number, computed once (the agent asks for classes of
/// every row it reads, every second; the names compare as strings).
fn classes() -> &'static [u8; MAX_SYSCALLS] {
    static TABLE: std::sync::OnceLock<[u8; MAX_SYSCALLS]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u8; MAX_SYSCALLS];
        for (nr, slot) in t.iter_mut().enumerate() {
            *slot = compute_class(nr as u32);
        }
        t
    })
}

/// The class table handed to the programs.
pub fn class_table() -> [u8; MAX_SYSCALLS] {
    *classes()
}

/// The symbolic name of an errno value (`E<n>` when unknown).
pub fn errno_name(errno: u32) -> String {
    const NAMES: &[(u32, &str)] = &[
        (1, "EPERM"),
        (2, "ENOENT"),
        (3, "ESRCH"),
        (4, "EINTR"),
        (5, "EIO"),
        (6, "ENXIO"),
        (7, "E2BIG"),
        (8, "ENOEXEC"),
        (9, "EBADF"),
        (10, "ECHILD"),
        (11, "EAGAIN"),
        (12, "ENOMEM"),
        (13, "EACCES"),
        (14, "EFAULT"),
        (16, "EBUSY"),
        (17, "EEXIST"),
        (18, "EXDEV"),
        (19, "ENODEV"),
        (20, "ENOTDIR"),
        (21, "EISDIR"),
        (22, "EINVAL"),
        (23, "ENFILE"),
        (24, "EMFILE"),
        (25, "ENOTTY"),
        (26, "ETXTBSY"),
        (27, "EFBIG"),
        (28, "ENOSPC"),
        (29, "ESPIPE"),
        (30, "EROFS"),
        (31, "EMLINK"),
        (32, "EPIPE"),
        (34, "ERANGE"),
        (35, "EDEADLK"),
        (36, "ENAMETOOLONG"),
        (38, "ENOSYS"),
        (39, "ENOTEMPTY"),
        (40, "ELOOP"),
        (61, "ENODATA"),
        (62, "ETIME"),
        (71, "EPROTO"),
        (75, "EOVERFLOW"),
        (88, "ENOTSOCK"),
        (90, "EMSGSIZE"),
        (91, "EPROTOTYPE"),
        (92, "ENOPROTOOPT"),
        (93, "EPROTONOSUPPORT"),
        (95, "EOPNOTSUPP"),
        (97, "EAFNOSUPPORT"),
        (98, "EADDRINUSE"),
        (99, "EADDRNOTAVAIL"),
        (100, "ENETDOWN"),
        (101, "ENETUNREACH"),
        (103, "ECONNABORTED"),
        (104, "ECONNRESET"),
        (105, "ENOBUFS"),
        (106, "EISCONN"),
        (107, "ENOTCONN"),
        (110, "ETIMEDOUT"),
        (111, "ECONNREFUSED"),
        (113, "EHOSTUNREACH"),
        (114, "EALREADY"),
        (115, "EINPROGRESS"),
        (116, "ESTALE"),
        (122, "EDQUOT"),
        (125, "ECANCELED"),
        (512, "ERESTARTSYS"),
        (513, "ERESTARTNOINTR"),
        (514, "ERESTARTNOHAND"),
        (516, "ERESTART_RESTARTBLOCK"),
        (524, "ENOTSUPP"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == errno)
        .map(|(_, s)| (*s).to_string())
        .unwrap_or_else(|| format!("E{errno}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn names_numbers_and_classes() {
        assert_eq!(name(257), "openat");
        assert_eq!(number("getppid"), Some(110));
        assert_eq!(class_of(257), class::FD_CREATE);
        assert_eq!(class_of(3), class::FD_CLOSE);
        assert_eq!(class_of(232), class::WAIT); // epoll_wait
        assert_eq!(
            class_of(number("accept4").unwrap()),
            class::WAIT | class::FD_CREATE
        );
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(4095), "E4095");
        for list in [WAIT, FD_CREATE, FD_CLOSE] {
            for n in list {
                assert!(number(n).is_some(), "{n} is not a known syscall");
            }
        }
    }
}
