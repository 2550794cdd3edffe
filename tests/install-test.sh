#!/usr/bin/env bash
# install-test.sh: checks `make install` end to end from an installed tree only. Installs into a temporary
# PREFIX (and once more with DESTDIR staging), checks the layout (bin/lmnc; lib/liblmn.a and lib/liblmn.so ->
# liblmn.so.MAJOR -> liblmn.so.VERSION; every runtime header in include/lmn/ and nothing else in include/;
# lib/pkgconfig/lmn.pc), pkg-config (include/ on the include path, not include/lmn/; the shared library by
# default, a static link with --static), then uses the installed lmnc from outside the repository to
# compile dsl-examples/tiny.lmn and builds it: with pkg-config against liblmn.so, fully static with
# pkg-config --static, with the generated Makefile as it is, and with the generated Makefile given
# pkg-config's flags; runs `tiny info` each time; builds tests/embed/embed.c and tests/embed/api.c (the
# public API of <lmn/lmn.h> alone, on tiny and tests/networks/classify_small.lmn) against the installed
# tree and liblmn.so and runs them. Prints `install: N passed, M failed`; exit 1 on a failure.
# Run by `make install-test` (and so `make test`); needs cc, make and pkg-config (c++ for one optional check).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmn-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
P=$tmp/prefix   # the install prefix
W=$tmp/work     # a user's directory outside the repository
mkdir -p "$W"
passed=0 failed=0 skipped=0
version=$(sed -n 's/^#define LMN_VERSION "\(.*\)"$/\1/p' "$root/runtime/lmn.h")
major=${version%%.*}

ok() { passed=$((passed + 1)); echo "  ok    $1"; }
bad() {
  failed=$((failed + 1))
  echo "  FAIL  $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/        | /' "$2" | tail -n 20; fi
}
skip() { skipped=$((skipped + 1)); echo "  SKIP  $1"; }
# check NAME CMD...: runs CMD with its output in a log shown on failure.
check() {
  local name=$1 log=$tmp/log
  shift
  if "$@" > "$log" 2>&1; then ok "$name"; else bad "$name" "$log"; fi
}
# Sub-makes start clean: no variables or flags inherited from a calling make.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make "$@"; }
pc() { PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config "$@"; }

echo "== make install PREFIX=$P"
check "make install PREFIX=..." mk -C "$root" install PREFIX="$P" DESTDIR=

# The layout.
check "bin/lmnc is installed and executable" test -x "$P/bin/lmnc"
check "lib/liblmn.a is installed" test -s "$P/lib/liblmn.a"
so_chain() {
  [ "$(readlink "$P/lib/liblmn.so")" = "liblmn.so.$major" ] &&
    [ "$(readlink "$P/lib/liblmn.so.$major")" = "liblmn.so.$version" ] && test -f "$P/lib/liblmn.so.$version" &&
    ! test -L "$P/lib/liblmn.so.$version" && readelf -d "$P/lib/liblmn.so.$version" | grep -q "SONAME.*\[liblmn.so.$major\]"
}
check "lib/liblmn.so -> liblmn.so.$major -> liblmn.so.$version (soname liblmn.so.$major)" so_chain
check "lib/pkgconfig/lmn.pc is installed" test -s "$P/lib/pkgconfig/lmn.pc"
headers_match() {
  local h n=0
  for h in "$root"/runtime/*.h; do
    cmp "$h" "$P/include/lmn/$(basename "$h")" || return 1
    n=$((n + 1))
  done
  [ "$(find "$P/include/lmn" -name '*.h' | wc -l)" -eq "$n" ] && [ "$(ls -A "$P/include")" = lmn ]
}
check "include/lmn holds exactly the runtime headers, include/ nothing else" headers_match
check "lmn.pc names the prefix" grep -qx "prefix=$P" "$P/lib/pkgconfig/lmn.pc"

# pkg-config.
check "pkg-config --modversion lmn is $version" test "$(pc --modversion lmn)" = "$version"
pc_flags_ok() {
  local f s
  f=" $(pc --cflags --libs lmn) "
  s=" $(pc --static --cflags --libs lmn) "
  echo "pkg-config --cflags --libs lmn: $f"
  echo "pkg-config --static --cflags --libs lmn: $s"
  [[ $f == *" -I$P/include "* && $f != *"include/lmn"* && $f == *" -L$P/lib "* && $f == *" -llmn "* &&
    $f == *" -lopenblas "* && $s == *" -lyaml "* && $s == *" -lpthread "* ]]
}
check "pkg-config --cflags --libs lmn: include/, not include/lmn/" pc_flags_ok
# shellcheck disable=SC2046
headers_compile() {
  printf '#include <lmn/driver.h>\n#include <lmn/lmn.h>\nint main(void) { lmn_err e; return lmn_errf(&e, "x") == -1 ? 0 : 1; }\n' > "$tmp/a.c"
  "$CC" -std=c11 -Wall -Wextra -Werror $(pc --cflags lmn) -o "$tmp/a" "$tmp/a.c" $(pc --libs lmn) -Wl,-rpath,"$P/lib" &&
    "$tmp/a"
}
check "installed headers compile as <lmn/driver.h>, <lmn/lmn.h>" headers_compile
# shellcheck disable=SC2046
no_generic_names() {
  printf '#include "net.h"\nint main(void) { return 0; }\n' > "$tmp/b.c"
  ! "$CC" -std=c11 -fsyntax-only $(pc --cflags lmn) "$tmp/b.c"
}
check "no generic header name (\"net.h\") on the include path pkg-config gives" no_generic_names
lmn_h_alone() {
  printf '#include <lmn/lmn.h>\nint main(void) { lmn_net *n = 0; return lmn_create(&n, 0, 1, 1, 1, 0, 0) == -1 ? 0 : 1; }\n' > "$tmp/c.c"
  "$CC" -std=c11 -Wall -Wextra -Werror -pedantic -I"$P/include" -fsyntax-only "$tmp/c.c"
}
check "<lmn/lmn.h> compiles alone with -I\$PREFIX/include only (-pedantic)" lmn_h_alone
if command -v c++ > /dev/null 2>&1; then
  cxx_ok() {
    printf '#include <lmn/lmn.h>\nint main() { lmn_net *n = nullptr; lmn_err e; return lmn_create(&n, nullptr, 1, 1, 1, 0, &e) == -1 ? 0 : 1; }\n' > "$tmp/d.cc"
    c++ -Wall -Wextra -Werror -I"$P/include" -o "$tmp/d" "$tmp/d.cc" -L"$P/lib" -llmn -Wl,-rpath,"$P/lib" && "$tmp/d"
  }
  check "<lmn/lmn.h> from C++ (extern \"C\"), linked to liblmn.so" cxx_ok
else
  skip "<lmn/lmn.h> from C++: no c++ compiler"
fi

# The installed lmnc, used from a directory outside the repository.
cp "$root/dsl-examples/tiny.lmn" "$W/tiny.lmn"
cp "$root/tests/networks/classify_small.lmn" "$W/classify_small.lmn"
check "installed lmnc --version" "$P/bin/lmnc" --version
compile() ( cd "$W" && "$P/bin/lmnc" compile "$1.lmn" -o "$1" > /dev/null && test -s "$1/$1.h" -a -s "$1/$1.c" -a -s "$1/main.c" -a -s "$1/Makefile" )
check "installed lmnc compile tiny.lmn -o DIR" compile tiny
check "installed lmnc compile classify_small.lmn -o DIR" compile classify_small
lmnet_is_prefix() {
  local l
  l=$(sed -n 's/^LMNET *?= *//p' "$W/tiny/Makefile")
  echo "generated LMNET ?= $l"
  [ "$(cd "$W/tiny" && cd "$l" && pwd -P)" = "$(cd "$P" && pwd -P)" ]
}
check "the generated Makefile's LMNET is the install prefix" lmnet_is_prefix
# Generated code that still includes the runtime headers by their plain names ("net.h", "driver.h") needs
# include/lmn/ on its include path; code that includes <lmn/net.h> needs only what pkg-config gives.
legacy=()
if grep -Eq '^#include "(net|driver|kernels|modules)\.h"' "$W/tiny/tiny.h" "$W/tiny/tiny.c" "$W/tiny/main.c"; then
  legacy=(-I"$P/include/lmn")
  echo "  note  the generated code includes \"net.h\"-style names: its builds below add -I\$PREFIX/include/lmn"
fi

# Build 1: pkg-config, no Makefile: the shared library, found through the rpath.
# shellcheck disable=SC2046
build_pc() {
  "$CC" -std=c11 -O2 -Wall -Wextra -Werror "${legacy[@]}" -o "$W/tiny-pc" "$W/tiny/tiny.c" "$W/tiny/main.c" \
    $(pc --cflags --libs lmn) -Wl,-rpath,"$P/lib"
}
check "cc tiny.c main.c \$(pkg-config --cflags --libs lmn)" build_pc
uses_installed_so() { ldd "$1" > "$tmp/ldd" && cat "$tmp/ldd" && grep -q "liblmn.so.$major => $P/lib/liblmn.so.$major" "$tmp/ldd"; }
check "the pkg-config build runs on the installed liblmn.so" uses_installed_so "$W/tiny-pc"
info_ok() { "$1" info > "$tmp/info" && cat "$tmp/info" && grep -q "tiny" "$tmp/info"; }
check "tiny info (pkg-config build)" info_ok "$W/tiny-pc"

# Build 1b: pkg-config --static, fully static: liblmn.a and the static OpenBLAS, libyaml and libc.
# shellcheck disable=SC2046
build_static() {
  "$CC" -std=c11 -O2 -static "${legacy[@]}" -o "$W/tiny-static" "$W/tiny/tiny.c" "$W/tiny/main.c" \
    $(pc --static --cflags --libs lmn) && ! readelf -d "$W/tiny-static" | grep -q NEEDED
}
if [ -e /usr/lib/x86_64-linux-gnu/libopenblas.a ] && [ -e /usr/lib/x86_64-linux-gnu/libyaml.a ]; then
  check "cc -static tiny.c main.c \$(pkg-config --static --cflags --libs lmn)" build_static
  check "tiny info (static build)" info_ok "$W/tiny-static"
else
  skip "static build: no libopenblas.a or libyaml.a"
fi

# Build 2: the generated Makefile as it is (liblmn.a by path).
check "make -C DIR (the generated Makefile as it is)" mk -C "$W/tiny"
check "tiny info (generated Makefile build)" info_ok "$W/tiny/tiny"

# Build 3: the generated Makefile with pkg-config's flags.
build_mk() { mk -B -C "$W/tiny" INC="$(pc --cflags lmn) ${legacy[*]}"; }
check "make -C DIR INC=\"\$(pkg-config --cflags lmn)\"" build_mk
check "tiny info (generated Makefile with pkg-config's flags)" info_ok "$W/tiny/tiny"

# A user's embedding programs against the installed tree and liblmn.so only.
# shellcheck disable=SC2046
build_embed() {
  "$CC" -std=c11 -O2 -Wall -Wextra -Werror -I"$W/tiny" "${legacy[@]}" -o "$W/embed" "$root/tests/embed/embed.c" \
    "$W/tiny/tiny.c" $(pc --cflags --libs lmn) -Wl,-rpath,"$P/lib"
}
check "embed.c builds against the installed tree" build_embed
embed_ok() { "$W/embed" > "$tmp/embed" && cat "$tmp/embed" && tail -n 1 "$tmp/embed" | grep -Eq '^embed: [0-9]+ passed, 0 failed$'; }
check "embed.c runs against the installed tree" embed_ok
# shellcheck disable=SC2046
build_api() {
  "$CC" -std=c11 -O2 -Wall -Wextra -Werror -I"$P/include" -c -o "$W/api.o" "$root/tests/embed/api.c" &&
    "$CC" -std=c11 -O2 -Wall -Wextra -Werror "${legacy[@]}" -o "$W/api" "$W/api.o" "$W/tiny/tiny.c" \
      "$W/classify_small/classify_small.c" $(pc --cflags --libs lmn) -Wl,-rpath,"$P/lib" &&
    nm -D "$W/api" | grep -q " U lmn_forward$"
}
check "api.c builds on <lmn/lmn.h> alone, linked to liblmn.so" build_api
check "api.c runs on the installed liblmn.so" uses_installed_so "$W/api"
api_ok() { "$W/api" > "$tmp/api" && cat "$tmp/api" && tail -n 1 "$tmp/api" | grep -Eq '^api: [0-9]+ passed, 0 failed$'; }
check "api.c: forward with and without targets, decode, errors for B + 1, T + 1, vocab, classes" api_ok

# DESTDIR staging: everything lands under DESTDIR/PREFIX and lmn.pc names PREFIX, not the staging dir.
D=$tmp/stage
check "make install DESTDIR=... PREFIX=/opt/lmnet" mk -C "$root" install DESTDIR="$D" PREFIX=/opt/lmnet
staged() {
  test -x "$D/opt/lmnet/bin/lmnc" && test -s "$D/opt/lmnet/lib/liblmn.a" && test -s "$D/opt/lmnet/include/lmn/net.h" &&
    test -s "$D/opt/lmnet/include/lmn/lmn.h" && test -f "$D/opt/lmnet/lib/liblmn.so.$version" &&
    [ "$(readlink "$D/opt/lmnet/lib/liblmn.so")" = "liblmn.so.$major" ] &&
    grep -qx "prefix=/opt/lmnet" "$D/opt/lmnet/lib/pkgconfig/lmn.pc" && [ "$(ls -A "$D")" = opt ] &&
    [ "$(ls -A "$D/opt")" = lmnet ]
}
check "DESTDIR staging holds only PREFIX, lmn.pc names PREFIX" staged

[ "$skipped" -eq 0 ] || echo "install: $skipped skipped (see SKIP above)"
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
