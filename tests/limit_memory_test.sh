#!/usr/bin/env bash
# bench/limit_memory.sh: passes the command's exit status through, prints the limit and
# the peak, removes its cgroup, and refuses a bad LIMIT with 125. Where no memory cgroup
# is writable (not root, no controller) it must say so and exit 125; the test then
# checks that and is skipped (exit 77).
set -u
script=$1
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

out=$("$script" 6Q true 2>&1)
[ $? = 125 ] || fail "a bad LIMIT did not exit 125: $out"
[[ $out == *"is not a size"* ]] || fail "a bad LIMIT was not explained: $out"

out=$("$script" 64M bash -c 'head -c 100000000 /dev/zero > /dev/null; exit 7' 2>&1)
rc=$?
if [ $rc = 125 ]; then
    [[ $out == *"no writable memory cgroup"* ]] || fail "exit 125 without the reason: $out"
    echo "skipped: $out"
    exit 77
fi
[ $rc = 7 ] || fail "the command's exit status 7 came back as $rc: $out"
[[ $out == *"peak usage"* ]] || fail "no peak usage printed: $out"
[[ $out == *"64.00 MiB"* ]] || fail "the limit was not printed: $out"
cg=$(sed -n 's/.* at \(.*mst-limit-[0-9]*\),.*/\1/p' <<<"$out" | head -1)
[ -n "$cg" ] || fail "no cgroup path printed: $out"
[ ! -e "$cg" ] || fail "cgroup $cg was left behind"

# A command that needs more than the limit is stopped by it (page cache alone is reclaimed).
out=$("$script" 32M python3 -c 'x = bytearray(256 << 20); x[::4096] = b"\1" * len(x[::4096])' 2>&1)
rc=$?
[ $rc != 0 ] || fail "256 MiB fit under a 32 MiB limit: $out"
echo "ok"
