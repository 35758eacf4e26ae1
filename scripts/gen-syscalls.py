#!/usr/bin/env python3
"""Regenerate kerno-probes/src/syscall_table.rs from the system's asm/unistd_64.h.

Numbers newer than the installed headers are listed in EXTRA (from the kernel's
arch/x86/entry/syscalls/syscall_64.tbl)."""
import re
import sys

HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
EXTRA = {451 + i: n for i, n in enumerate(
    "cachestat fchmodat2 map_shadow_stack futex_wake futex_wait futex_requeue statmount "
    "listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat "
    "getxattrat listxattrat removexattrat open_tree_attr".split())}

names = {}
for line in open(HEADER):
    m = re.match(r"#define __NR_(\w+) (\d+)", line)
    if m:
        names[int(m.group(2))] = m.group(1)
for nr, name in EXTRA.items():
    names.setdefault(nr, name)
top = max(names)
out = [
    "// Generated from asm/unistd_64.h (plus 451..=467 from the kernel's syscall_64.tbl).",
    "// Regenerate with scripts/gen-syscalls.py; do not edit by hand.",
    "",
    "/// x86_64 syscall names by number; empty where the number is unused.",
    f"pub(crate) static X86_64: [&str; {top + 1}] = [",
]
out += [f'    "{names.get(i, "")}",' for i in range(top + 1)]
out.append("];")
path = sys.argv[1] if len(sys.argv) > 1 else "kerno-probes/src/syscall_table.rs"
open(path, "w").write("\n".join(out) + "\n")
