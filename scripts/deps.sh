#!/bin/sh
# The build and test dependencies, named in one place.
#
#   scripts/deps.sh build|test          install what is missing (make deps,
#                                       make deps-test)
#   scripts/deps.sh --check build|test  only say what is missing (the build
#                                       and make check run this)
#
# "test" means the build's dependencies and the tests' together, so one
# round installs everything. On Debian/Ubuntu as root, missing packages are
# installed with apt-get, quietly (the output goes to a log file); otherwise
# the script prints the one command to run and fails.
set -eu
check_only=0
if [ "${1:-}" = --check ]; then
    check_only=1
    shift
fi
what=${1:-build}
case $what in
build | test) ;;
*)
    echo "usage: scripts/deps.sh [--check] build|test" >&2
    exit 2
    ;;
esac
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
root=$(cd "$(dirname "$0")/.." && pwd)
log=${PROMPTD_DEPS_LOG:-$root/build/deps.log}

# pkg-config module -> Debian package / Homebrew formula
need_pc="libuv:libuv1-dev:libuv libcurl:libcurl4-openssl-dev:curl sqlite3:libsqlite3-dev:sqlite jansson:libjansson-dev:jansson"
# command -> Debian package
need_cmd_build="cc:gcc make:make pkg-config:pkg-config"
# What the tests run; each one a test would otherwise skip or fail without:
# man pages (groff, man-db, mandoc), unit files (systemd-analyze), a file
# even root cannot write (chattr), the fuzzers (clang), the style check
# (clang-format), the Node.js client and Raycast extension (node, npm),
# the README's socat example, and /bin/kill (procps: the unit's ExecReload=,
# which systemd-analyze verify wants to find; a minimal root lacks it).
need_cmd_test="python3:python3 groff:groff man:man-db mandoc:mandoc systemd-analyze:systemd
/bin/kill:procps chattr:e2fsprogs clang:clang curl:curl clang-format:clang-format node:nodejs npm:npm socat:socat"

missing_deb=""
missing_brew=""
add() { # add DEBIAN-PACKAGE
    case " $missing_deb " in *" $1 "*) return ;; esac
    missing_deb="$missing_deb $1"
}

for entry in $need_cmd_build; do
    cmd=${entry%%:*}
    command -v "$cmd" >/dev/null 2>&1 || add "${entry#*:}"
done
have_pkgconfig=1
command -v "$PKG_CONFIG" >/dev/null 2>&1 || have_pkgconfig=0
for entry in $need_pc; do
    mod=${entry%%:*}
    rest=${entry#*:}
    if [ $have_pkgconfig = 0 ] || ! "$PKG_CONFIG" --exists "$mod" 2>/dev/null; then
        add "${rest%%:*}"
        missing_brew="$missing_brew ${rest#*:}"
    fi
done

# clang's runtime (libFuzzer, ASan, UBSan) is only a Recommends of clang:
# name it explicitly, for the clang that is installed or about to be.
# Prints the package to install, or nothing when a fuzzer links already.
clang_runtime() {
    if command -v clang >/dev/null 2>&1; then
        probe=$(mktemp -d)
        echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n; }' \
            >"$probe/p.c"
        if clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >/dev/null 2>&1; then
            rm -rf "$probe"
            return
        fi
        rm -rf "$probe"
        major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    else # the clang apt-get would install: llvm-defaults' clang-N
        major=$(apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9]*\)$/\1/p' | head -n 1)
    fi
    if [ -n "$major" ] && apt-cache show "libclang-rt-$major-dev" >/dev/null 2>&1; then
        echo "libclang-rt-$major-dev"
    else
        echo libclang-rt-dev
    fi
}

if [ "$what" = test ] && [ "$(uname -s)" != Darwin ]; then
    for entry in $need_cmd_test; do
        cmd=${entry%%:*}
        command -v "$cmd" >/dev/null 2>&1 || add "${entry#*:}"
    done
    rt=$(clang_runtime)
    [ -z "$rt" ] || add "$rt"
fi

[ -z "$missing_deb" ] && exit 0
names=$(echo "${missing_deb# }" | sed "s/ /, /g")

if [ $check_only = 1 ]; then
    target="make deps"
    [ "$what" = test ] && target="make deps-test"
    echo "promptd: missing $what dependencies ($names): run \`$target\`, which installs them (as root) or prints the command to run." >&2
    exit 1
fi

if [ "$(uname -s)" = Darwin ]; then
    echo "promptd: missing build dependencies. Install them with:" >&2
    echo "    brew install pkg-config$missing_brew" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "promptd: missing dependencies; install your system's equivalents of these Debian packages:$missing_deb" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "promptd: missing dependencies. Install them with:" >&2
    echo "    sudo apt-get install --no-install-recommends$missing_deb" >&2
    exit 1
fi

mkdir -p "$(dirname "$log")"
echo "promptd: installing $names (log: $log)" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing_deb; } \
    >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "promptd: apt-get failed (the whole output is in $log)." >&2
    exit 1
fi
