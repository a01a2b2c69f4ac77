#!/usr/bin/env bash
# run_install_test.sh SOURCE_DIR BUILD_DIR
# Installs resnet.cpp into a temporary prefix inside the build folder, checks the installed files
# (headers without backend types, libresnet.a and .so, the `resnet` binary, the CMake package,
# resnet.pc), then builds and runs a small outside project against it: with CMake
# (find_package(resnet), resnet::resnet and resnet::resnet_static) and with pkg-config + g++.
set -euo pipefail
src=${1:?usage: run_install_test.sh SOURCE_DIR BUILD_DIR}
build=$(cd "${2:?usage: run_install_test.sh SOURCE_DIR BUILD_DIR}" && pwd)
work=$build/install-test
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"
step() { echo "== $*"; }
fail() { echo "install test: FAILED: $*" >&2; exit 1; }

step "build the installed targets (no-op when up to date)"
cmake --build "$build" --target resnet resnet_shared resnet_cli >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "building resnet, resnet_shared, resnet_cli"; }
step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "cmake --install"; }

libdir=$(dirname "$(find "$prefix" -name libresnet.a | head -1)")
[ -f "$libdir/libresnet.a" ] || fail "libresnet.a not installed"
for f in "$prefix/include/resnet/model.h" "$prefix/include/resnet/layers.h" "$libdir/libresnet.so" \
         "$prefix/bin/resnet" "$libdir/cmake/resnet/resnetConfig.cmake" \
         "$libdir/cmake/resnet/resnetConfigVersion.cmake" "$libdir/pkgconfig/resnet.pc"; do
  [ -e "$f" ] || fail "missing $f"
done
"$prefix/bin/resnet" --version | grep -q "resnet.cpp" || fail "installed resnet --version"
[ -z "$(find "$prefix/include" -name '*.h' -not -path '*/include/resnet/*')" ] ||
  fail "headers installed outside include/resnet"
step "installed headers expose no oneDNN, HDF5 or JSON types"
bash "$src/tests/headers/check_headers.sh" "$prefix/include/resnet"

launcher=()
cc=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); cc=(ccache); fi
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
step "outside project with CMake: find_package(resnet), resnet::resnet and resnet::resnet_static"
cmake -S "$src/tests/install/consumer" -B "$work/consumer" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "configuring the consumer"; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "building the consumer"; }
"$work/consumer/consumer_shared" || fail "consumer_shared"
"$work/consumer/consumer_static" || fail "consumer_static"
ldd "$work/consumer/consumer_shared" | grep -q "$libdir/libresnet.so" ||
  fail "consumer_shared does not use the installed libresnet.so"
if ldd "$work/consumer/consumer_static" | grep -q libresnet; then
  fail "consumer_static links libresnet.so"
fi

step "outside project with pkg-config + g++"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors resnet || fail "pkg-config resnet"
cxx=${CXX:-g++}
# shellcheck disable=SC2046
"${cc[@]}" "$cxx" -std=c++20 -O1 \
  -c "$src/tests/install/consumer/main.cpp" -o "$work/main.o" $(pkg-config --cflags resnet)
# shellcheck disable=SC2046
"$cxx" "$work/main.o" -o "$work/consumer_pc" $(pkg-config --libs resnet) -Wl,-rpath,"$libdir"
"$work/consumer_pc" || fail "consumer built with pkg-config"
# Static: the archive plus everything `pkg-config --static` lists as private.
# shellcheck disable=SC2046
"$cxx" "$work/main.o" -o "$work/consumer_pc_static" "$libdir/libresnet.a" \
  $(pkg-config --static --libs resnet | sed 's/-lresnet\b//')
"$work/consumer_pc_static" || fail "consumer linked statically with pkg-config --static"
echo "install test: OK"
