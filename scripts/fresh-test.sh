#!/bin/sh
# `make fresh-test`: the README's two commands, tried as a new user tries
# them, on fresh minimal Debian roots (debootstrap --variant=minbase, then
# only git, make and ca-certificates), as root and as a non-root user:
#
#   make deps && make demo
#   make deps-test && make check
#
# As root each command must pass the first time. As the user, a command
# that stops with the `sudo apt-get install ...` line it prints has that
# line run as root (without sudo, which a minimal root lacks), once, and is
# run again: one round must be enough.
#
#   scripts/fresh-test.sh [DIST[:root|:user]]...   default: bookworm trixie,
#                                                  each as root and as user
#   scripts/fresh-test.sh --prepare [DIST]...      only make the minimal roots
#   scripts/fresh-test.sh --clean                  remove FRESH_DIR
#
# It needs root (debootstrap, chroot, mounts) and installs debootstrap when
# it is missing. What is tested is the committed HEAD, cloned from a git
# bundle inside each root. Every round runs in its own mount and PID
# namespace: its mounts (/proc, /sys, /dev, /dev/pts, /dev/shm, the apt
# cache) and its processes end with it, and a trap unmounts them as well.
#
# FRESH_DIR (default /var/tmp/promptd-fresh) keeps, per distribution, the
# minimal root as a tarball and apt's downloaded packages, both reused
# between runs (a package from the cache installs as one from the mirror);
# each round unpacks a new root from the tarball. Logs: FRESH_DIR/logs/.
# The closing summary has one line per distribution and user.
# FRESH_ONLY=demo (or check) runs only that command (for a quick look).
set -u

FRESH_DIR=${FRESH_DIR:-/var/tmp/promptd-fresh}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
FRESH_USER=fresh
SRC=$(cd "$(dirname "$0")/.." && pwd)
ME=$SRC/scripts/fresh-test.sh
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() {
    echo "fresh-test: $*" >&2
    exit 1
}

need_root() {
    [ "$(id -u)" = 0 ] && return
    die "needs root (debootstrap, chroot, mounts): sudo make fresh-test"
}

# One round, inside its own mount and PID namespace (see main): DIST WHO.
round() {
    dist=$1
    who=$2
    base=$FRESH_DIR/$dist/base.tar
    root=$FRESH_DIR/$dist/root-$who
    log=$FRESH_DIR/logs/$dist-$who.log
    result=$FRESH_DIR/logs/$dist-$who.result
    mounts=""

    # shellcheck disable=SC2317 # (run by the trap)
    unmount_all() {
        for m in $mounts; do # the last mounted first
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        done
        mounts=""
    }
    trap unmount_all EXIT
    trap 'exit 130' INT TERM
    mnt() { # mnt TARGET MOUNT-ARGS...: mount, and remember to unmount
        target=$1
        shift
        mount "$@" "$target" || die "cannot mount $target"
        mounts="$target $mounts"
    }

    rm -rf "$root"
    mkdir -p "$root" "$FRESH_DIR/$dist/apt-archives/partial"
    tar -xpf "$base" --numeric-owner -C "$root" || die "cannot unpack $base"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # The machine's own name resolves, as Debian's installer writes it
    # (debootstrap does not).
    printf '127.0.1.1\t%s\n' "$(uname -n)" >>"$root/etc/hosts"
    # A network that intercepts TLS has its CA in the host's local store;
    # npm (Debian's Node.js uses the system store) needs it too.
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    mnt "$root/proc" -t proc proc
    mnt "$root/sys" -t sysfs sysfs
    mnt "$root/dev" --bind /dev
    mnt "$root/dev/pts" --bind /dev/pts
    mnt "$root/dev/shm" -t tmpfs -o mode=1777 shm
    mnt "$root/var/cache/apt/archives" --bind "$FRESH_DIR/$dist/apt-archives"
    git -C "$SRC" bundle create "$root/tmp/promptd.bundle" HEAD >/dev/null 2>&1 \
        || die "git bundle failed in $SRC"
    chmod 0644 "$root/tmp/promptd.bundle"

    if [ "$who" = root ]; then
        home=/root
        as_who() { chroot "$root" env -i HOME=/root USER=root LOGNAME=root PATH=$PATH_IN TERM=dumb sh -c "$1"; }
    else
        home=/home/$FRESH_USER
        chroot "$root" useradd -m -s /bin/sh "$FRESH_USER" || die "useradd failed"
        as_who() {
            chroot --userspec="$FRESH_USER:$FRESH_USER" "$root" env -i HOME="$home" USER=$FRESH_USER \
                LOGNAME=$FRESH_USER PATH=$PATH_IN TERM=dumb sh -c "$1"
        }
    fi
    as_root() { chroot "$root" env -i HOME=/root PATH=$PATH_IN TERM=dumb DEBIAN_FRONTEND=noninteractive sh -c "$1"; }

    {
        echo "== $dist as $who: $(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' "$root/etc/os-release")"
        echo "== source: $(git -C "$SRC" log -1 --format='%h %s' HEAD)"
    } >"$log"
    : >"$result"
    note() { printf '%s\n' "$*" >>"$result"; }

    if ! as_who "cd && git -c advice.detachedHead=false clone -q /tmp/promptd.bundle promptd" >>"$log" 2>&1; then
        note "clone FAIL"
        return 1
    fi
    status=0
    for cmd in "make deps && make demo" "make deps-test && make check"; do
        step=${cmd##*make }
        case ${FRESH_ONLY:-$step} in "$step") ;; *) continue ;; esac
        out=$FRESH_DIR/logs/$dist-$who-$step.log
        t0=$(date +%s)
        echo "== \$ $cmd" >>"$log"
        as_who "cd ~/promptd && $cmd" >"$out" 2>&1
        rc=$?
        rounds=0
        if [ $rc != 0 ] && [ "$who" != root ]; then
            line=$(sed -n 's/^ *sudo \(apt-get install .*\)$/\1/p' "$out" | head -n 1)
            if [ -n "$line" ]; then
                rounds=1
                echo "== # $line   (as root)" >>"$log"
                cat "$out" >>"$log"
                as_root "apt-get install -y -q ${line#apt-get install }" >>"$log" 2>&1 \
                    || echo "== the printed apt-get line failed" >>"$log"
                as_who "cd ~/promptd && $cmd" >"$out" 2>&1
                rc=$?
                if [ $rc != 0 ] && grep -q '^ *sudo apt-get install' "$out"; then
                    rounds=2
                fi
            fi
        fi
        secs=$(($(date +%s) - t0))
        cat "$out" >>"$log"
        lines=$(wc -l <"$out")
        counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
        verdict=pass
        [ $rc = 0 ] || verdict=FAIL
        [ $rounds -le 1 ] || verdict="FAIL (a second apt-get round was needed)"
        [ $rc = 0 ] && [ $rounds -le 1 ] || status=1
        detail="$lines lines"
        [ -n "$counts" ] && detail="$counts"
        [ $rounds = 1 ] && detail="$detail; after 1 apt-get round"
        note "$step $verdict ($detail; $((secs / 60))m$((secs % 60))s)"
        grep -E '^(FAIL|SKIP) ' "$out" | sort -u | sed 's/^/    /' >>"$result"
        [ $rc = 0 ] || break
    done
    return $status
}

# The minimal root of DIST as a tarball: debootstrap minbase, then only
# git, make and ca-certificates, as on a new machine.
make_base() {
    dist=$1
    base=$FRESH_DIR/$dist/base.tar
    [ -s "$base" ] && return 0
    command -v debootstrap >/dev/null 2>&1 || {
        echo "fresh-test: installing debootstrap" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
            || die "cannot install debootstrap: apt-get install debootstrap"
    }
    tmp=$FRESH_DIR/$dist/base.tmp
    rm -rf "$tmp"
    mkdir -p "$tmp" "$FRESH_DIR/logs"
    blog=$FRESH_DIR/logs/$dist-debootstrap.log
    echo "fresh-test: debootstrap $dist (log: $blog)" >&2
    debootstrap --variant=minbase "$dist" "$tmp" "$MIRROR" >"$blog" 2>&1 \
        || die "debootstrap $dist failed (see $blog)"
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    chroot "$tmp" env -i PATH=$PATH_IN DEBIAN_FRONTEND=noninteractive sh -c \
        'apt-get update -q && apt-get install -y -q git make ca-certificates && apt-get clean' \
        >>"$blog" 2>&1 || die "installing git make ca-certificates in $dist failed (see $blog)"
    rm -f "$tmp/etc/resolv.conf"
    tar -cpf "$base.part" --numeric-owner -C "$tmp" . || die "cannot write $base"
    mv "$base.part" "$base"
    rm -rf "$tmp"
}

case ${1:-} in
--round)
    round "$2" "$3"
    exit $?
    ;;
--prepare)
    shift
    need_root
    [ $# -gt 0 ] || set -- bookworm trixie
    for dist in "$@"; do make_base "$dist"; done
    exit 0
    ;;
--clean)
    need_root
    # A round's mounts live in its own namespace: nothing here is mounted.
    rm -rf "$FRESH_DIR"
    exit 0
    ;;
-h | --help)
    sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

need_root
command -v unshare >/dev/null 2>&1 || die "needs unshare (util-linux)"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] \
    || echo "fresh-test: note: uncommitted changes are not tested (HEAD is)" >&2
[ $# -gt 0 ] || set -- bookworm trixie
mkdir -p "$FRESH_DIR/logs"
start=$(date +%s)
all=0
summary=""
for arg in "$@"; do
    dist=${arg%%:*}
    whos="root user"
    case $arg in *:*) whos=${arg#*:} ;; esac
    make_base "$dist"
    for who in $whos; do
        echo "fresh-test: $dist as $who (log: $FRESH_DIR/logs/$dist-$who.log)" >&2
        unshare --mount --pid --fork sh "$ME" --round "$dist" "$who"
        rc=$?
        [ $rc = 0 ] || all=1
        # A failed round's root stays for a look (chroot into it), until the next run.
        [ $rc != 0 ] || rm -rf "$FRESH_DIR/$dist/root-$who"
        summary="$summary$dist $who: $([ $rc = 0 ] && echo pass || echo FAIL)
$(sed 's/^/  /' "$FRESH_DIR/logs/$dist-$who.result" 2>/dev/null)
"
    done
done
secs=$(($(date +%s) - start))
echo
echo "fresh-test summary ($((secs / 60))m$((secs % 60))s; logs in $FRESH_DIR/logs):"
printf '%s' "$summary"
exit $all
