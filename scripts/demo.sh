#!/usr/bin/env bash
# Keyward, end to end, in one command: a vault, a swtpm-backed host, a local
# OCI registry, PostgreSQL, a signed image and model, Cedar policy, and an
# agent launched through `keyward launch` that gets a KV secret, a workload
# identity JWT and a PostgreSQL credential — then loses them when its model
# is revoked. Everything runs on loopback in a temporary directory and is
# stopped by PID at the end.
#
#   scripts/demo.sh            # installs what is missing (scripts/deps.sh), builds, runs
#   KEYWARD_DEMO_KEEP=1 scripts/demo.sh   # keep the temporary directory
#   KEYWARD_DEMO_BIN_DIR=DIR scripts/demo.sh   # use DIR/keyward and
#                              # DIR/examples/demo_agent instead of building
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

bold=$'\e[1m'; dim=$'\e[2m'; green=$'\e[32m'; red=$'\e[31m'; off=$'\e[0m'
[[ -t 1 ]] || { bold=""; dim=""; green=""; red=""; off=""; }
n=0
step() { n=$((n + 1)); printf '\n%s== %d. %s ==%s\n' "$bold" "$n" "$*" "$off"; }
say() { printf '%s\n' "$*"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; "$@"; }
ok() { printf '%s✔ %s%s\n' "$green" "$*" "$off"; }
fail() { printf '%s✘ %s%s\n' "$red" "$*" "$off" >&2; exit 1; }

pids=()
work=""
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$work" && -z "${KEYWARD_DEMO_KEEP:-}" ]]; then
    rm -rf "$work"
  elif [[ -n "$work" ]]; then
    say "kept $work"
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1"; }

# --------------------------------------------------------------------------
step "Install what is missing and build"
scripts/deps.sh
venv="${KEYWARD_TOOLS_VENV:-$root/target/tools-venv}"
if [[ -n "${KEYWARD_DEMO_BIN_DIR:-}" ]]; then
  # Prebuilt binaries (the end-to-end test runs the demo on its own build).
  bin_dir="$KEYWARD_DEMO_BIN_DIR"
else
  show cargo build -j2 --locked -p keyward-vault --bin keyward -p keyward-client --example demo_agent
  bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug"
fi
keyward="$bin_dir/keyward"
agent="$bin_dir/examples/demo_agent"
[[ -x "$keyward" && -x "$agent" ]] || fail "missing $keyward or $agent"
work="$(mktemp -d -t keyward-demo-XXXXXX)"
export KEYWARD_FORMAT_HINT=1
say "working directory: $work"

# --------------------------------------------------------------------------
step "Start the vault (sled in a temp dir, Shamir unseal)"
vault_port=$(free_port)
addr="http://127.0.0.1:$vault_port"
mkdir -p "$work/ca" "$work/host" "$work/vault"
cat >"$work/vault/keyward.toml" <<EOF
listen = "127.0.0.1:$vault_port"
data_dir = "$work/vault/data"

[audit]
path = "$work/vault/audit.log"

[enrollment]
ek_roots = ["$work/ca/swtpm-localca-rootca-cert.pem"]
ek_intermediates = ["$work/ca/issuercert.pem"]

[artifacts.registry]
insecure_hosts = ["127.0.0.1:REGISTRY_PORT"]

[release.identity]
issuer = "$addr/v1/identity"
trust_domain = "demo.keyward.test"
default_ttl = "5m"
EOF

# The host's TPM first: the vault trusts its manufacturer CA.
say "Manufacturing a software TPM with an EK certificate (swtpm_setup, local CA)..."
cat >"$work/ca/swtpm-localca.conf" <<EOF
statedir = $work/ca
signingkey = $work/ca/signkey.pem
issuercert = $work/ca/issuercert.pem
certserial = $work/ca/certserial
EOF
printf -- '--platform-manufacturer Keyward\n--platform-version 2.1\n--platform-model swtpm\n' >"$work/ca/swtpm-localca.options"
cat >"$work/ca/swtpm_setup.conf" <<EOF
create_certs_tool = swtpm_localca
create_certs_tool_config = $work/ca/swtpm-localca.conf
create_certs_tool_options = $work/ca/swtpm-localca.options
active_pcr_banks = sha256
EOF
mkdir -p "$work/tpm"
swtpm_setup --tpm2 --create-ek-cert --create-platform-cert --pcr-banks sha256 \
  --config "$work/ca/swtpm_setup.conf" --tpm-state "$work/tpm" --logfile "$work/tpm/setup.log" >/dev/null
swtpm socket --tpm2 --flags not-need-init,startup-clear --tpmstate "dir=$work/tpm" \
  --server "type=unixio,path=$work/tpm/swtpm.sock" --ctrl "type=unixio,path=$work/tpm/swtpm.sock.ctrl" \
  --log "file=$work/tpm/swtpm.log,level=1" &
pids+=($!)
tcti="swtpm:path=$work/tpm/swtpm.sock"
wait_until 10 "swtpm" test -S "$work/tpm/swtpm.sock"
ok "swtpm running (pid ${pids[-1]}), TCTI $tcti"

registry_port=$(free_port)
sed -i "s/REGISTRY_PORT/$registry_port/" "$work/vault/keyward.toml"
"$keyward" server --config "$work/vault/keyward.toml" 2>"$work/vault/server.log" &
pids+=($!)
export KEYWARD_ADDR="$addr"
wait_until 30 "the vault" "$keyward" operator status
init=$("$keyward" operator init --shares 3 --threshold 2 --format json)
root_token=$(json root_token <<<"$init")
share1=$(json keys.0 <<<"$init"); share2=$(json keys.1 <<<"$init"); share3=$(json keys.2 <<<"$init")
say "Unseal shares (any 2 of 3):"
say "  $share1"; say "  $share2"; say "  $share3"
export KEYWARD_TOKEN="$root_token"
say "Init leaves the vault unsealed; seal it, and unseal with two of the three shares:"
show "$keyward" operator seal
show "$keyward" operator unseal "$share3"
show "$keyward" operator unseal "$share1"
ok "vault unsealed at $addr (pid ${pids[-1]})"

# --------------------------------------------------------------------------
step "Enroll the host: EK certificate, AK, credential activation; approve; boot policy"
show "$keyward" host enroll --vault "$addr" --tcti "$tcti" --state-dir "$work/host" \
  --name demo-host --labels env=demo
host_id=$(json host_id <"$work/host/host.json")
show "$keyward" host approve "$host_id"
# Golden boot PCRs: this firmware-less swtpm's PCRs 0-9 as measured now.
tpm2_pcrread -T "$tcti" sha256:0,1,2,3,4,5,6,7,8,9 -o "$work/host/pcrs.bin" >/dev/null
python3 - "$work/host/pcrs.bin" >"$work/host/boot-policy.json" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
print(json.dumps({"golden_pcrs": {"sha256": {str(i): data[32*i:32*i+32].hex() for i in range(10)}}}))
PY
show "$keyward" host set-boot-policy "$host_id" --file "$work/host/boot-policy.json"
ok "host $host_id is active"

# --------------------------------------------------------------------------
step "Start a local OCI registry (Debian's docker-registry)"
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$registry_port
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
wait_until 20 "the registry" curl -sf "http://127.0.0.1:$registry_port/v2/"
ok "registry at 127.0.0.1:$registry_port (pid ${pids[-1]})"

# --------------------------------------------------------------------------
step "Push and sign a sample image (skopeo; key-signed simple signing)"
image_digest=$(python3 scripts/demo/make-image.py "$work/image" v1 agent "#!/bin/sh
echo demo agent")
image_ref="127.0.0.1:$registry_port/demo/agent:v1"
show skopeo copy --quiet --dest-tls-verify=false --preserve-digests "oci:$work/image:v1" "docker://$image_ref"
"$venv/bin/python" scripts/sign-image.py keygen "$work/image-signer.pem" "$work/image-signer.pub"
sig_tag=$("$venv/bin/python" scripts/sign-image.py sign --reference "$image_ref" \
  --digest "$image_digest" --key "$work/image-signer.pem" --out "$work/image-sig")
skopeo copy --quiet --dest-tls-verify=false --preserve-digests "oci:$work/image-sig:sig" \
  "docker://127.0.0.1:$registry_port/demo/agent:$sig_tag"
ok "image $image_ref@$image_digest signed"

# --------------------------------------------------------------------------
step "Sign a sample model directory (OpenSSF model-signing)"
mkdir -p "$work/model/tokenizer"
printf '{"architecture": "demo", "layers": 2}\n' >"$work/model/config.json"
head -c 4096 /dev/urandom >"$work/model/weights.bin"
printf 'hello\nworld\n' >"$work/model/tokenizer/vocab.txt"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/model-signer.key"
openssl ec -in "$work/model-signer.key" -pubout -out "$work/model-signer.pub" 2>/dev/null
show "$venv/bin/model_signing" sign key --private_key "$work/model-signer.key" \
  --signature "$work/model.sig" "$work/model"
model_digest=$("$keyward" debug verify-model --signature "$work/model.sig" \
  --key "$work/model-signer.pub" "$work/model" 2>/dev/null)
ok "model version $model_digest"

# --------------------------------------------------------------------------
step "Register both with their signing policies"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
json.dump({"kind": "image", "predicate_types": ["application/vnd.dev.cosign.simplesigning.v1+json"],
           "keys": [{"key_id": "image-release", "public_key": open(f"{w}/image-signer.pub").read()}]},
          open(f"{w}/image-policy.json", "w"))
json.dump({"kind": "model", "predicate_types": ["https://model_signing/signature/v1.0"],
           "keys": [{"key_id": "model-release", "public_key": open(f"{w}/model-signer.pub").read()}]},
          open(f"{w}/model-policy.json", "w"))
PY
show "$keyward" policy signing put image release --file "$work/image-policy.json"
show "$keyward" policy signing put model release --file "$work/model-policy.json"
show "$keyward" artifact register image --ref "$image_ref" --discover --policy release
show "$keyward" artifact register model --version "$model_digest" --signature "$work/model.sig" \
  --policy release --name demo-model
ok "image and model registered"

# --------------------------------------------------------------------------
step "Secrets and a Cedar release policy"
# PostgreSQL for dynamic credentials, started as the unprivileged postgres account.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_port=$(free_port)
mkdir -p "$work/pg"
pg_password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s' "$pg_password" >"$work/pg/pwfile"
chown -R postgres:postgres "$work/pg" 2>/dev/null || true
chmod 755 "$work"
as_pg() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; else "$@"; fi; }
as_pg "$pg_bin/initdb" -D "$work/pg/data" -U keyward_admin --auth=scram-sha-256 --no-sync \
  --pwfile="$work/pg/pwfile" --encoding=UTF8 --locale=C >"$work/pg/initdb.log"
as_pg "$pg_bin/postgres" -D "$work/pg/data" -k "$work/pg" -h 127.0.0.1 -p "$pg_port" \
  -c fsync=off -c shared_buffers=16MB >"$work/pg/log" 2>&1 &
pids+=($!)
export PGPASSWORD="$pg_password"
wait_until 30 "PostgreSQL" psql -h 127.0.0.1 -p "$pg_port" -U keyward_admin -d postgres -c 'SELECT 1'
psql -q -h 127.0.0.1 -p "$pg_port" -U keyward_admin -d postgres \
  -c "CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, 'gpu hours'), (2, 'tokens');"
unset PGPASSWORD
ok "PostgreSQL on 127.0.0.1:$pg_port (pid ${pids[-1]})"

printf '{"api_key": "demo-%s"}\n' "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/kv.json"
show "$keyward" kv put demo/app --file "$work/kv.json"
python3 - "$work" "$pg_port" "$pg_password" <<'PY'
import json, sys
w, port, pw = sys.argv[1:4]
json.dump({"connection_url": f"postgres://keyward_admin:{pw}@127.0.0.1:{port}/postgres",
           "creation_statements": [
               "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
               "GRANT SELECT ON orders TO \"{{name}}\";"],
           "default_ttl": 8, "max_ttl": 600}, open(f"{w}/db-role.json", "w"))
PY
"$keyward" engine database-role readonly --file "$work/db-role.json" >/dev/null
rm -f "$work/db-role.json"
say "database role 'readonly' configured (its admin URL is stored barrier-encrypted)"
cat >"$work/demo.cedar" <<EOF
// The demo agent: the signed image running the signed model, on a host labelled env=demo.
permit (
  principal is Keyward::Workload,
  action in [Keyward::Action::"release", Keyward::Action::"renew"],
  resource is Keyward::Secret
)
when {
  (resource.path == "kv/demo/app" || resource.path == "identity/token"
    || resource.path == "database/postgres/readonly") &&
  principal.image_signer == "key:image-release" &&
  principal.model_signer == "key:model-release" &&
  principal.hasTag("env") && principal.getTag("env") == "demo"
};
EOF
show "$keyward" policy release put demo --file "$work/demo.cedar"
ok "Cedar policy written and validated against the schema"

# --------------------------------------------------------------------------
step "Launch the agent through keyward launch"
say "The launcher makes an instance key, records {image, model, key hash} in the"
say "workload event log, extends PCR 23, and execs the agent with the key path."
mkdir -m 700 "$work/agent"
export KEYWARD_VAULT="$addr" DEMO_AUDIENCE="demo-service" DEMO_PG_PORT="$pg_port" DEMO_OUT="$work/agent"
show "$keyward" launch --image "$image_ref@$image_digest" --model-digest "$model_digest" \
  --model-name demo-model --model-dir "$work/model" --tcti "$tcti" --state-dir "$work/host" \
  -- "$agent" --hold >"$work/agent.out" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_until 120 "the agent's first releases" grep -q "holding" "$work/agent.out"
cat "$work/agent.out"
ok "kv secret, identity JWT and a PostgreSQL credential released; a query ran with the credential"

say "A downstream service verifies the agent's identity token with nothing but the"
say "vault's OIDC discovery document and JWKS (Python 'cryptography', not Keyward code):"
show "$venv/bin/python" scripts/verify-jwt.py --issuer "$addr/v1/identity" --audience demo-service \
  "$work/agent/identity.jwt"
ok "identity token verified against the JWKS"

# --------------------------------------------------------------------------
step "Revoke the model: the lease is revoked, the next release denied"
show "$keyward" artifact revoke "$model_digest"
wait "$agent_pid" || fail "the agent failed: $(cat "$work/agent.out")"
sed -n '/holding/,$p' "$work/agent.out" | tail -n +2
grep -q "lease revoked" "$work/agent.out" || fail "no revocation seen"
grep -q "release denied" "$work/agent.out" || fail "the release after revocation was not denied"
ok "revocation followed the attestation"

# --------------------------------------------------------------------------
step "A tampered model is refused"
cp -r "$work/model" "$work/model-tampered"
printf 'poison' >>"$work/model-tampered/weights.bin"
say "Claiming the signed model's digest for tampered files: the launcher rehashes them."
if "$keyward" launch --image "$image_ref@$image_digest" --model-digest "$model_digest" \
  --model-name demo-model --model-dir "$work/model-tampered" --tcti "$tcti" \
  --state-dir "$work/host" -- "$agent" 2>"$work/tampered.err"; then
  fail "the launcher started a tampered model"
fi
say "launcher: $(tail -1 "$work/tampered.err")"
tampered_digest=$(sed -n 's/.* hashes to \(sha256:[0-9a-f]*\).*/\1/p' "$work/tampered.err")
[[ -n "$tampered_digest" ]] || fail "the launcher did not say what the tampered model hashes to"
ok "tampered model refused before launch"
say "Launching it honestly, under its own digest: measured, attested — and denied by the vault."
if "$keyward" launch --image "$image_ref@$image_digest" --model-digest "$tampered_digest" \
  --model-name demo-model --model-dir "$work/model-tampered" --tcti "$tcti" \
  --state-dir "$work/host" -- "$agent" >"$work/tampered.out" 2>&1; then
  fail "the vault released secrets to a tampered model: $(cat "$work/tampered.out")"
fi
cat "$work/tampered.out"
request_id=$(sed -n 's/.*request id \([^)]*\)).*/\1/p' "$work/tampered.out" | tail -1)
[[ -n "$request_id" ]] || fail "the agent was not denied: $(cat "$work/tampered.out")"
reason=$(python3 - "$work/vault/audit.log" "$request_id" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("request_id") == sys.argv[2] and r.get("outcome") == "denied":
        print(r.get("reason"))
PY
)
[[ -n "$reason" ]] || fail "no audit record for request $request_id"
say "audit log, request $request_id: $reason"
ok "the agent got a uniform denial; the audit log says why"

# --------------------------------------------------------------------------
step "The audit trail, and its hash chain"
python3 - "$work/vault/audit.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("operation") in ("attest", "secret.release", "lease.renew", "lease.revoke-basis", "artifact.revoke"):
        print(f'{r.get("operation"):<20} {r.get("outcome"):<8} {r.get("actor","")[:60]:<60} {r.get("reason") or ""}')
PY
show "$keyward" audit verify "$work/vault/audit.log"
ok "audit chain verified"

step "Done: stopping everything by PID"
