#!/usr/bin/env bash
# Build llama-cpp-python once into a project-known wheel directory and install it into .venv.
#
#   bash scripts/build_llama_cpp.sh            # build (if not cached) + install into .venv
#   MOCHI_LLAMA_CMAKE_ARGS="..." bash ...      # try other flags (own cache key)
#   MOCHI_SKIP_LLAMA=1 bash scripts/bootstrap.sh   # skip this step entirely
#
# Why a wheel directory: pip caches a wheel built from an sdist under the sdist's name and
# version, whatever CMAKE_ARGS said, so a rebuild with other flags silently reuses the old
# wheel. We build with `pip wheel --no-cache-dir` into ~/.cache/mochi/wheels/<version>-<flags
# hash>/ and install that file by path: CI (a fresh clone on the same machine) reuses it and a
# new machine compiles it once (docs/notes.md has the measured compile times).
#
# Never fatal: a failed build prints one clear line and exits 0, so bootstrap goes on and
# torch stays the backend (`mochi_model.loader` picks llama.cpp only when llama_cpp imports).
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
version=0.3.36
# Measured on this machine (docs/notes.md, "Quantized CPU engine"): a portable x86-64 build with
# AVX2/FMA/F16C/BMI2 chosen explicitly (no -march=native, so no AVX-512/AMX code paths that
# crashed a native build of 0.3.36), OpenMP threads, llamafile sgemm and the Q4_K repack
# kernels. No BLAS (slower than ggml's own kernels for Q4_K), no tests/tools/server/mtmd
# (compile time). Other CPUs: set MOCHI_LLAMA_CMAKE_ARGS (e.g. -DGGML_NATIVE=ON).
default_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX512=OFF -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON -DGGML_BLAS=OFF -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
-DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF"
machine=$(uname -m)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
if [ "$machine" = "x86_64" ] && [ -n "$flags" ] && ! { [[ "$flags" == *" avx2"* ]] && [[ "$flags" == *" fma"* ]] \
    && [[ "$flags" == *" f16c"* ]] && [[ "$flags" == *" bmi2"* ]]; }; then
  machine="x86_64-pre-avx2"  # an older x86 CPU: the AVX2 build would die with SIGILL; build for this CPU
fi
if [ "$machine" != "x86_64" ] && [ "$machine" != "AMD64" ]; then
  # The x86 flags above mean nothing elsewhere; let llama.cpp pick for the build machine.
  default_args="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF"
fi
args=${MOCHI_LLAMA_CMAKE_ARGS:-$default_args}
key=$(printf '%s\n%s\n%s\n' "$version" "$args" "$machine" | sha256sum | cut -c1-12)
dir=${MOCHI_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mochi/wheels}/llama-cpp-python-$version-$key
say() { echo "llama.cpp: $*"; }

if [ ! -x "$py" ]; then say "no .venv yet (run scripts/bootstrap.sh); skipped"; exit 0; fi
if "$py" - "$version" "$key" <<'EOF' 2>/dev/null; then
import json, pathlib, sys
import llama_cpp  # noqa: F401  (imports the shared library too)
stamp = pathlib.Path(llama_cpp.__file__).parent / "mochi-build.json"
info = json.loads(stamp.read_text())
sys.exit(0 if (info["version"], info["key"]) == (sys.argv[1], sys.argv[2]) else 1)
EOF
  exit 0  # already installed with these flags
fi

wheel=$(ls "$dir"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1)
if [ -z "$wheel" ]; then
  if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null; then
    say "no cmake/C++ compiler; not built, torch stays the CPU backend"; exit 0
  fi
  mkdir -p "$dir"
  jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
  say "compiling llama-cpp-python $version once into $dir (a few minutes; log: $dir/build.log)"
  start=$(date +%s)
  if CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$jobs" "$py" -m pip wheel --no-deps --no-cache-dir \
      --no-binary llama-cpp-python -w "$dir" "llama-cpp-python==$version" >"$dir/build.log" 2>&1; then
    say "compiled in $(( $(date +%s) - start )) s"
  else
    say "build FAILED after $(( $(date +%s) - start )) s (see $dir/build.log); torch stays the CPU backend"
    rm -f "$dir"/*.whl; exit 0
  fi
  wheel=$(ls "$dir"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1)
  printf '%s\n' "$args" > "$dir/cmake-args.txt"
fi
if ! "$py" -m pip install -q --force-reinstall --no-deps "$wheel" >"$dir/install.log" 2>&1 \
    || ! "$py" -m pip install -q "diskcache>=5.6.1" "jinja2>=2.11.3" "typing-extensions>=4.5.0" >>"$dir/install.log" 2>&1; then
  say "install FAILED (see $dir/install.log); torch stays the CPU backend"; exit 0
fi
# Import in a child process: a build for the wrong CPU dies with SIGILL here, not in the server.
if ! "$py" -c 'import llama_cpp; llama_cpp.llama_backend_init()' >/dev/null 2>&1; then
  say "installed wheel does not load on this machine; uninstalled, torch stays the CPU backend"
  "$py" -m pip uninstall -q -y llama-cpp-python >/dev/null 2>&1; exit 0
fi
"$py" - "$version" "$key" "$args" <<'EOF'
import json, pathlib, sys
import llama_cpp
stamp = pathlib.Path(llama_cpp.__file__).parent / "mochi-build.json"
stamp.write_text(json.dumps({"version": sys.argv[1], "key": sys.argv[2], "cmake_args": sys.argv[3]}))
EOF
say "llama-cpp-python $version installed ($wheel)"
