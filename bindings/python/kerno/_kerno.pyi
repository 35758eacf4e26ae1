# Type stubs for the Rust extension (kerno-py). Keep in step with kerno-py/src.
import os
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union

__version__: str
SCHEMA_VERSION: int

Severity = Literal["info", "warning", "critical"]
Status = Literal["healthy", "degraded", "warning", "critical"]
# A threshold's value: a number, a list of errno names (benign_errnos), or a dict of custom
# thresholds (custom).
ThresholdValue = Union[float, int, Sequence[str], Mapping[str, float]]
# A custom rule: an object with `id: str` and `evaluate(signals) -> list[Finding]`.
_RuleLike = Any

class _HostRequired(TypedDict):
    hostname: str
    kernel: str
    cpus: int
    memory_bytes: int
    environment: str  # bare-metal | systemd | container | kubernetes

class Host(_HostRequired, total=False):
    node: str  # --node-name, KERNO_NODE_NAME, NODE_NAME, config node_name, else the hostname

class Workload(TypedDict):
    kind: str  # Deployment | StatefulSet | CronJob | Job | DaemonSet or Job | Node
    name: str
    inferred: bool

class _SubjectRequired(TypedDict):
    kind: str  # process | cgroup | device | flow | syscall | host
    name: str

class Subject(_SubjectRequired, total=False):
    """What a finding is about, and whose it is (each field only when known)."""

    process: Dict[str, Any]
    cgroup: str
    pod: str  # namespace/name
    namespace: str
    pod_name: str
    pod_uid: str
    container: str  # the container's name ("POD": the pod's sandbox)
    container_id: str  # 64 hex digits
    runtime: str  # containerd | cri-o | docker | podman
    qos: str  # guaranteed | burstable | besteffort
    workload: Workload
    unit: str  # systemd unit, e.g. nginx.service
    slice: str
    node: str

class Window(TypedDict):
    start_unix_ms: int
    duration_ms: int

class Degraded(TypedDict):
    domain: str
    reason: str

class LostEvent(TypedDict):
    collector: str
    reason: str
    count: int

class Lost(TypedDict):
    syscall_samples: int
    sched_samples: int
    map_full: int
    block_unmatched: int
    oom_kills: int
    syscalls_evicted: int
    syscalls_recursion: int
    fds_map_full: int
    fds_evicted: int
    sched_map_full: int
    sched_evicted: int
    sched_read_failed: int
    sched_recursion: int
    disk_map_full: int
    disk_read_failed: int
    disk_recursion: int
    tcp_map_full: int
    tcp_evicted: int
    tcp_unmatched_connect: int
    tcp_read_failed: int
    tcp_recursion: int
    oom_read_failed: int
    oom_recursion: int
    total: int
    events: list[LostEvent]

class Summary(TypedDict):
    critical: int
    warning: int
    info: int

class _DomainStatusRequired(TypedDict):
    domain: str
    observed: bool
    detail: str

class DomainStatus(_DomainStatusRequired, total=False):
    # Why the domain was not observed: present only then, and only when known.
    reason: str

class ProbeError(OSError):
    """The eBPF probes could not be loaded (no BTF, no tracefs, a rejected program)."""

class Histogram:
    """A latency distribution in nanoseconds (log-linear buckets, percentiles within a few %)."""

    def __init__(self, samples_ns: Iterable[int] = ...) -> None: ...
    def with_value(self, value_ns: int, n: int = 1) -> Histogram: ...
    def merged(self, other: Histogram) -> Histogram: ...
    @property
    def count(self) -> int: ...
    def percentile(self, q: float) -> Optional[int]: ...
    @property
    def mean(self) -> Optional[float]: ...
    @property
    def max(self) -> Optional[int]: ...
    def buckets(self) -> List[Tuple[int, int, int]]:
        """Non-empty buckets as (low_ns, high_ns, count)."""
    def count_above(self, ns: int) -> float: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def __len__(self) -> int: ...

class Signals:
    """One window of kernel signals (what doctor collected, or a saved incident)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signals: ...
    @classmethod
    def from_json(cls, text: str) -> Signals: ...
    @property
    def schema(self) -> int: ...
    @property
    def host(self) -> Host: ...
    @property
    def window(self) -> Window: ...
    @property
    def duration_secs(self) -> float: ...
    @property
    def collector_pid(self) -> int: ...
    @property
    def degraded(self) -> List[Degraded]: ...
    @property
    def lost(self) -> Lost: ...
    @property
    def syscalls(self) -> Optional[Dict[str, Any]]: ...
    @property
    def tcp(self) -> Optional[Dict[str, Any]]: ...
    @property
    def oom(self) -> Optional[Dict[str, Any]]: ...
    @property
    def disk(self) -> Optional[Dict[str, Any]]: ...
    @property
    def sched(self) -> Optional[Dict[str, Any]]: ...
    @property
    def fds(self) -> Optional[Dict[str, Any]]: ...
    @property
    def memory(self) -> Optional[Dict[str, Any]]: ...
    @property
    def filesystem(self) -> Optional[Dict[str, Any]]: ...
    @property
    def pids(self) -> Optional[Dict[str, Any]]: ...
    @property
    def conntrack(self) -> Optional[Dict[str, Any]]: ...
    @property
    def custom(self) -> Dict[str, Any]: ...
    def observed(self, domain: str) -> bool: ...
    def syscall(self, name: str) -> Optional[Dict[str, Any]]: ...
    def histograms(self) -> Dict[str, Histogram]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def save(self, path: Union[str, os.PathLike[str]]) -> None: ...

class Finding:
    """One diagnosis. Custom rules build them with keyword arguments."""

    def __init__(
        self,
        *,
        rule: str,
        severity: Severity,
        title: str,
        cause: str = "",
        impact: str = "",
        evidence: Sequence[str] = ...,
        value: float = 0.0,
        threshold: float = 0.0,
        unit: str = "",
        fix: Sequence[str] = ...,
        eta_secs: Optional[float] = None,
        subject: Union[str, Mapping[str, Any], None] = None,
        low_volume: bool = False,
    ) -> None: ...
    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def title(self) -> str: ...
    @property
    def cause(self) -> str: ...
    @property
    def impact(self) -> str: ...
    @property
    def evidence(self) -> List[str]: ...
    @property
    def value(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def unit(self) -> str: ...
    @property
    def fix(self) -> List[str]: ...
    @property
    def eta_secs(self) -> Optional[float]: ...
    @property
    def subject(self) -> Subject: ...
    @property
    def whose(self) -> Optional[str]: ...
    @property
    def low_volume(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

class Report:
    """Ranked findings for one window; str() is the CLI's text report."""

    @property
    def status(self) -> Status: ...
    @property
    def generator(self) -> str: ...
    @property
    def schema(self) -> int: ...
    @property
    def host(self) -> Host: ...
    @property
    def window(self) -> Window: ...
    @property
    def summary(self) -> Summary: ...
    @property
    def findings(self) -> List[Finding]: ...
    @property
    def domains(self) -> List[DomainStatus]: ...
    @property
    def degraded(self) -> List[Degraded]: ...
    @property
    def lost(self) -> Lost: ...
    @property
    def signals(self) -> Signals: ...
    @property
    def analysis(self) -> Optional[Dict[str, Any]]: ...
    def scoped(self, *, namespace: Optional[str] = None, pod: Optional[str] = None) -> Report: ...
    def render(self, color: bool = False) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def _repr_html_(self) -> str: ...

class SyscallTrace:
    """A running syscall trace (``trace_syscalls``): an iterator of one dict per call."""

    def __iter__(self) -> SyscallTrace: ...
    def __next__(self) -> Dict[str, Any]: ...
    def summary(self) -> Dict[str, int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> SyscallTrace: ...
    def __exit__(self, t: Optional[object], v: Optional[object], tb: Optional[object]) -> bool: ...

def trace_syscalls(
    pid: Optional[int] = None,
    comm: Optional[str] = None,
    syscalls: Optional[Sequence[str]] = None,
    min_latency_ms: float = 0.0,
    errors: bool = False,
    duration: Optional[float] = None,
    count: Optional[int] = None,
    ring_bytes: Optional[int] = None,
) -> SyscallTrace: ...
def doctor(
    duration: float = 10.0,
    thresholds: Optional[Mapping[str, ThresholdValue]] = None,
    rules: Optional[Iterable[_RuleLike]] = None,
    domains: Optional[Sequence[str]] = None,
) -> Report: ...
def evaluate(
    signals: Signals,
    thresholds: Optional[Mapping[str, ThresholdValue]] = None,
    rules: Optional[Iterable[_RuleLike]] = None,
    builtin: bool = True,
    ai: Union[None, bool, Mapping[str, Any]] = None,
) -> Report: ...
def load_signals(path: Union[str, os.PathLike[str]]) -> Signals: ...
def parse_signals(text: str) -> Signals: ...
def default_thresholds() -> Dict[str, Any]: ...
def thresholds() -> List[Dict[str, Any]]: ...
def builtin_rules() -> List[Tuple[str, str]]: ...
