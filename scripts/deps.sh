#!/bin/sh
# Makes sure the build and test dependencies are present. On Debian/Ubuntu
# as root it installs what is missing with apt-get; otherwise it prints the
# exact command to run and fails. Usage: scripts/deps.sh build|test
set -eu
what=${1:-build}

# pkg-config module -> Debian package / Homebrew formula
need_pc="libuv:libuv1-dev:libuv libcurl:libcurl4-openssl-dev:curl sqlite3:libsqlite3-dev:sqlite jansson:libjansson-dev:jansson"
# command -> Debian package (tests only)
need_cmd_build="cc:gcc make:make pkg-config:pkg-config"
need_cmd_test="python3:python3 groff:groff clang:clang curl:curl clang-format:clang-format"

missing_deb=""
missing_brew=""
have_pkgconfig=1
command -v pkg-config >/dev/null 2>&1 || have_pkgconfig=0

for entry in $need_cmd_build; do
    cmd=${entry%%:*}; pkg=${entry#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing_deb="$missing_deb $pkg"
done
for entry in $need_pc; do
    mod=${entry%%:*}; rest=${entry#*:}; deb=${rest%%:*}; brew=${rest#*:}
    if [ $have_pkgconfig = 0 ] || ! pkg-config --exists "$mod"; then
        missing_deb="$missing_deb $deb"; missing_brew="$missing_brew $brew"
    fi
done
if [ "$what" = test ]; then
    for entry in $need_cmd_test; do
        cmd=${entry%%:*}; pkg=${entry#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing_deb="$missing_deb $pkg"
    done
    # clang's sanitizer runtime for make test-asan / fuzzing
    if command -v clang >/dev/null 2>&1 && [ "$(uname -s)" = Linux ] &&
        ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan*-x86_64.a >/dev/null 2>&1 &&
        ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan*.a >/dev/null 2>&1; then
        missing_deb="$missing_deb libclang-rt-dev"
    fi
fi

[ -z "$missing_deb" ] && exit 0

if [ "$(uname -s)" = Darwin ]; then
    echo "promptd: missing build dependencies. Install them with:" >&2
    echo "    brew install pkg-config$missing_brew" >&2
    exit 1
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "promptd: installing missing packages:$missing_deb" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing_deb >&2
    exit 0
fi
echo "promptd: missing dependencies. Install them with:" >&2
echo "    sudo apt-get install$missing_deb" >&2
exit 1
