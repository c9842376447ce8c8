#!/usr/bin/env bash
# Installs what a fresh Debian 12 / Ubuntu machine lacks to build, test and
# demo Keyward. Idempotent: installs nothing (and never runs apt-get update)
# when everything is present. Non-interactive. Prints what it installed.
#
# Later parts of the project add to PACKAGES (PostgreSQL, docker-registry,
# skopeo) and to the Python venv step (model-signing).
set -euo pipefail

# Debian package -> why we need it.
PACKAGES=(
  pkg-config       # finds libtss2 for tss-esapi-sys
  libtss2-dev      # tpm2-tss 3.2.1 headers and libraries (tss-esapi 7.7)
  swtpm            # software TPM for tests and the demo
  swtpm-tools      # swtpm_setup / swtpm_localca: manufactures TPMs with EK certificates
  tpm2-tools       # peer implementation for cross-checks
  openssl          # certificate and key cross-checks in tests
  docker-registry  # OCI registry (distribution 2.8) for image tests and the demo
  skopeo           # pushes images (Debian's build cannot sign with sigstore keys)
  postgresql       # PostgreSQL 15 server + psql: the database/postgres engine tests (tests/src/postgres.rs)
  python3-venv     # venvs for model-signing and the benchmark peers
  curl
  gcc              # C toolchain for -sys crates
  make
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    SUDO="sudo"
  fi
  echo "deps.sh: installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps.sh: installed: ${missing[*]}"
else
  echo "deps.sh: all system packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps.sh: cargo not found: install Rust (rustup) >= 1.89 first" >&2
  exit 1
fi

# Python tools used by tests and the demo, in a venv inside the build
# directory: PyPI model-signing (a real OpenSSF model signer) and the
# `cryptography` package (the independent image signer in scripts/).
venv="${KEYWARD_TOOLS_VENV:-$(cd "$(dirname "$0")/.." && pwd)/target/tools-venv}"
want_model_signing="1.1.1"
if [[ ! -x "$venv/bin/model_signing" ]] ||
  ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('model-signing') != '$want_model_signing')" 2>/dev/null; then
  echo "deps.sh: creating Python tools venv at $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "model-signing==$want_model_signing" pyOpenSSL cryptography
  echo "deps.sh: installed model-signing $want_model_signing, cryptography into $venv"
else
  echo "deps.sh: Python tools venv present ($venv)"
fi
