#!/usr/bin/env bash
# limit_memory.sh LIMIT CMD [ARGS...]
#
# Runs CMD inside a memory cgroup limited to LIMIT bytes (suffixes K, M, G, T: powers of
# 1024), page cache included, so that a machine with less RAM is emulated honestly: the
# kernel charges the page cache CMD brings in to the cgroup and reclaims it at the limit,
# just as a smaller machine would. Swap is kept out where the kernel allows it
# (memory.swap.max = 0 on cgroup v2, memory.memsw.limit_in_bytes = LIMIT on v1).
#
# At the end it prints the limit and the peak usage (memory.peak on v2,
# memory.max_usage_in_bytes on v1) and how often the limit was hit, removes its cgroup,
# and exits with CMD's exit status. Its own errors (no writable memory cgroup, a bad
# LIMIT) exit with 125.
#
# Needs write access to a memory cgroup (root, or a delegated cgroup v2 subtree). The
# cgroup is created under the one this script runs in, so limits above still apply.
# On cgroup v2 when the file system refuses a child cgroup (a parent with processes of
# its own cannot enable the memory controller for children), `systemd-run --scope` is
# tried instead, if it works here.
set -u

die() {
    echo "limit_memory.sh: $*" >&2
    exit 125
}

[ $# -ge 2 ] || die "usage: limit_memory.sh LIMIT CMD [ARGS...]   (LIMIT like 6G, 512M, 1073741824)"

parse_bytes() {
    local v=$1 n unit
    [[ $v =~ ^([0-9]+)([KkMmGgTt]?)[Bb]?$ ]] || return 1
    n=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[2]}
    case $unit in
        K | k) n=$((n << 10)) ;;
        M | m) n=$((n << 20)) ;;
        G | g) n=$((n << 30)) ;;
        T | t) n=$((n << 40)) ;;
    esac
    echo "$n"
}

LIMIT_TEXT=$1
LIMIT=$(parse_bytes "$1") || die "LIMIT '$1' is not a size (e.g. 6G, 512M, 1073741824)"
[ "$LIMIT" -gt 0 ] || die "LIMIT must be positive"
shift

human() {
    awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1; while (b >= 1024 && i < 5) { b /= 1024; i++ }
                          printf(i == 1 ? "%d %s" : "%.2f %s", b, u[i]) }'
}

# The memory controller: cgroup v2 (unified, "memory" in cgroup.controllers) or v1 (a
# cgroup mount with the memory option).
V2_ROOT=""
V1_ROOT=""
while read -r _ mnt type opts _; do
    if [ "$type" = cgroup2 ] && [ -z "$V2_ROOT" ] && grep -qw memory "$mnt/cgroup.controllers" 2>/dev/null; then
        V2_ROOT=$mnt
    elif [ "$type" = cgroup ] && [[ ,$opts, == *,memory,* ]]; then
        V1_ROOT=$mnt
    fi
done </proc/mounts

CG=""
VERSION=""
make_cgroup() {
    local base=$1 own
    [ -d "$base" ] || return 1
    own="$base/mst-limit-$$"
    mkdir "$own" 2>/dev/null || return 1
    CG=$own
}

if [ -n "$V2_ROOT" ]; then
    rel=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    if make_cgroup "$V2_ROOT$rel" || make_cgroup "$V2_ROOT"; then
        if [ ! -f "$CG/memory.max" ]; then
            # The parent does not hand the memory controller to its children; ask it to.
            echo +memory >"$(dirname "$CG")/cgroup.subtree_control" 2>/dev/null
        fi
        if [ -f "$CG/memory.max" ] && echo "$LIMIT" >"$CG/memory.max" 2>/dev/null; then
            VERSION=2
            [ -f "$CG/memory.swap.max" ] && echo 0 >"$CG/memory.swap.max"
        else
            rmdir "$CG" 2>/dev/null
            CG=""
        fi
    fi
fi
if [ -z "$VERSION" ] && [ -n "$V1_ROOT" ]; then
    rel=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
    if make_cgroup "$V1_ROOT$rel" || make_cgroup "$V1_ROOT"; then
        if echo "$LIMIT" >"$CG/memory.limit_in_bytes" 2>/dev/null; then
            VERSION=1
            # memory + swap at the same limit: no swapping out to escape it.
            [ -f "$CG/memory.memsw.limit_in_bytes" ] && echo "$LIMIT" >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
        else
            rmdir "$CG" 2>/dev/null
            CG=""
        fi
    fi
fi

if [ -z "$VERSION" ] && [ -n "$V2_ROOT" ] && command -v systemd-run >/dev/null &&
    systemd-run --scope --quiet -p MemoryMax="$LIMIT" true >/dev/null 2>&1; then
    # systemd owns the tree here: let it make the scope, and read the peak from inside.
    echo "limit_memory.sh: limit $LIMIT_TEXT ($(human "$LIMIT")), cgroup v2 through systemd-run --scope" >&2
    systemd-run --scope --quiet -p MemoryMax="$LIMIT" -p MemorySwapMax=0 -- bash -c '
        "$@"; rc=$?
        cg=/sys/fs/cgroup$(awk -F: "\$1 == \"0\" { print \$3 }" /proc/self/cgroup)
        peak=$(cat "$cg/memory.peak" 2>/dev/null || echo unknown)
        echo "limit_memory.sh: peak usage $peak bytes (memory.peak), exit status $rc" >&2
        exit $rc' _ "$@"
    exit $?
fi

if [ -z "$VERSION" ]; then
    why="no memory controller found in /proc/mounts"
    [ -n "$V2_ROOT$V1_ROOT" ] && why="cannot create or limit a cgroup under ${V2_ROOT:-$V1_ROOT} (run as root, or delegate a cgroup v2 subtree)"
    die "no writable memory cgroup: $why"
fi

cleanup() {
    [ -n "$CG" ] && [ -d "$CG" ] || return
    # Anything CMD left running stays limited until it ends; say so rather than kill it.
    if [ -s "$CG/cgroup.procs" ]; then
        echo "limit_memory.sh: processes still in $CG: $(tr '\n' ' ' <"$CG/cgroup.procs"); leaving it" >&2
        return
    fi
    rmdir "$CG" 2>/dev/null || echo "limit_memory.sh: could not remove $CG" >&2
}
trap cleanup EXIT

echo "limit_memory.sh: limit $LIMIT_TEXT ($(human "$LIMIT")) on cgroup v$VERSION at $CG, page cache included" >&2
# The child joins the cgroup first and then becomes CMD, so everything CMD starts is in it.
bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CG" "$@" &
child=$!
trap 'kill -INT $child 2>/dev/null' INT
trap 'kill -TERM $child 2>/dev/null' TERM
while :; do
    wait $child
    rc=$?
    # wait returns early (>128) when a trapped signal arrives; wait again until it ends.
    kill -0 $child 2>/dev/null || break
done

if [ "$VERSION" = 2 ]; then
    peak=$(cat "$CG/memory.peak" 2>/dev/null)
    events=$(awk '$1 == "max" || $1 == "oom_kill" { printf("%s %s ", $1, $2) }' "$CG/memory.events" 2>/dev/null)
    src=memory.peak
else
    peak=$(cat "$CG/memory.max_usage_in_bytes" 2>/dev/null)
    events=$(awk '$1 == "oom_kill" { print $2 " OOM kills" }' "$CG/memory.oom_control" 2>/dev/null)
    src=memory.max_usage_in_bytes
fi
if [ -n "$peak" ]; then
    echo "limit_memory.sh: limit $(human "$LIMIT"), peak usage $(human "$peak") ($src, page cache included); $events; exit status $rc" >&2
else
    echo "limit_memory.sh: limit $(human "$LIMIT"), peak usage unknown ($src missing); exit status $rc" >&2
fi
exit "$rc"
