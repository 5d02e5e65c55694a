#!/usr/bin/env bash
# Check s3-workspace-sync against one release of @aws-sdk/client-s3.
#
#   bash scripts/check-sdk-version.sh <version>     e.g. 3.723.0 (any npm spec: 3.723, latest)
#
# In a temporary copy of this checkout (tracked and untracked-but-not-ignored
# files; never the checkout itself, never its node_modules) it runs `npm ci`,
# then `npm install --no-save @aws-sdk/client-s3@<version>` (and
# @aws-sdk/lib-storage at the newest release not above it, as the tests
# import it), then:
#   1. typecheck: src/ and examples/ with the repository's compiler options
#      (the tests are left out: some of them use SDK additions the library
#      does not need, e.g. HeadObject's ContentRange);
#   2. tests: test/unit (SDK error mapping through aws-sdk-client-mock, the
#      client the library builds), test/integration and test/large against the
#      local s3rver and the strict in-memory S3 double (multipart uploads and
#      ranged downloads, state files, failures), plus the "conditional
#      requests" group of
#      test/contract/strict-s3.test.ts (If-None-Match: * on PutObject, which
#      the library relies on to create a workspace's identity object once and
#      which a too-old SDK silently drops).
# The SDK's own dependencies (@aws-sdk/core, @smithy/*) stay at the lock
# file's versions where the requested release allows them (as in a project
# that upgrades or downgrades only client-s3); FRESH_SDK_DEPS=1 resolves them
# to the newest releases instead, as in an application's first install. The
# versions used are printed (the @smithy/core line).
# Exit status: 0 all passed, 1 a check failed, 2 setup failed (bad version,
# install). About 1.5-2.5 minutes on 2 cores with a warm npm cache.
# KEEP_TMP=1 keeps the temporary copy for inspection.
set -uo pipefail
exec </dev/null # nothing here may wait for input

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: bash $0 <@aws-sdk/client-s3 version>" >&2
  exit 2
fi
spec="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CI="${CI:-true}"
NPM_FLAGS=(--no-audit --no-fund --loglevel=error)

section() { printf '\n==> %s\n' "$*"; }
die() { echo "check-sdk-version: $*" >&2; exit 2; }
started=$SECONDS

# -- resolve the spec to one exact release --------------------------------
# newest release matching an npm spec (npm view lists matches unsorted)
newest() {
  npm view "$1" version --json 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      let v; try { v = JSON.parse(s || "[]"); } catch { v = []; }
      const num = (x) => x.split(".").map(Number);
      const cmp = (a, b) => { const x = num(a), y = num(b); for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i]; return 0; };
      const all = (Array.isArray(v) ? v : [v]).filter((x) => typeof x === "string" && /^\d+\.\d+\.\d+$/.test(x)).sort(cmp);
      process.stdout.write(all.at(-1) ?? "");
    });'
}
version="$(newest "@aws-sdk/client-s3@$spec")"
[[ "$version" =~ ^3\.[0-9]+\.[0-9]+$ ]] || die "no @aws-sdk/client-s3 v3 release matches '$spec'"
# lib-storage is only a test dependency; its releases do not match client-s3's one for one.
storage="$(newest "@aws-sdk/lib-storage@<=$version")"
[[ "$storage" =~ ^3\.[0-9]+\.[0-9]+$ ]] || die "no @aws-sdk/lib-storage release at or below $version"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/s3ws-sdk-$version-XXXXXX")"
if [[ "${KEEP_TMP:-}" == 1 ]]; then
  trap 'echo "kept: $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi

section "copy of $root -> $tmp"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files plus untracked, non-ignored ones (new tests); not node_modules/, dist/.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$tmp" || die "copying the checkout failed"
else
  for entry in "$root"/* "$root"/.[!.]*; do
    case "$(basename "$entry")" in node_modules | dist | .git) continue ;; esac
    [[ -e "$entry" ]] && cp -a "$entry" "$tmp/"
  done
fi
cd "$tmp" || die "cannot enter $tmp"

section "npm ci"
npm ci "${NPM_FLAGS[@]}" --prefer-offline || die "npm ci failed"

if [[ "${FRESH_SDK_DEPS:-}" == 1 ]]; then
  # Forget the lock file's SDK packages, so the SDK's own dependencies
  # (@aws-sdk/core, @smithy/*…) resolve to the newest releases its ranges
  # allow, as in an application's first `npm install`.
  section "FRESH_SDK_DEPS=1: the lock file's @aws-sdk/*, @smithy/*, @aws-crypto/*, @aws/* entries dropped"
  node -e '
    const fs = require("node:fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    const sdk = /(^|\/)node_modules\/@(aws-sdk|smithy|aws-crypto|aws)\//;
    let n = 0;
    for (const key of Object.keys(lock.packages ?? {})) if (sdk.test(key)) { delete lock.packages[key]; n++; }
    fs.writeFileSync("package-lock.json", JSON.stringify(lock, null, 2));
    console.log(`${n} entries dropped`);
  ' || die "could not edit the temporary package-lock.json"
fi

section "install @aws-sdk/client-s3@$version @aws-sdk/lib-storage@$storage (--no-save)"
npm install --no-save "${NPM_FLAGS[@]}" --prefer-offline \
  "@aws-sdk/client-s3@$version" "@aws-sdk/lib-storage@$storage" || die "npm install of the SDK failed"
got="$(node -p 'require("@aws-sdk/client-s3/package.json").version')"
[[ "$got" == "$version" ]] || die "asked for @aws-sdk/client-s3@$version, node resolves $got"
# What the SDK's code actually runs on: @smithy/* come from the SDK's ^ ranges.
node -e '
  const { createRequire } = require("node:module");
  const req = createRequire(require.resolve("@aws-sdk/client-s3"));
  const v = (n) => { try { return req(n + "/package.json").version; } catch { return "-"; } };
  console.log(`client-s3 ${v("@aws-sdk/client-s3")}: @aws-sdk/core ${v("@aws-sdk/core")}, @smithy/core ${v("@smithy/core")}, ` +
    `@smithy/smithy-client ${v("@smithy/smithy-client")}, @smithy/node-http-handler ${v("@smithy/node-http-handler")}`);
'

failed=()
step() { # step <name> <command...>: run, time, record a failure, go on
  local name="$1" t0=$SECONDS
  shift
  section "$name"
  if "$@"; then
    echo "ok: $name ($((SECONDS - t0)) s)"
  else
    echo "FAILED: $name ($((SECONDS - t0)) s)" >&2
    failed+=("$name")
  fi
}

cat >tsconfig.sdk-check.json <<'EOF'
{ "extends": "./tsconfig.json", "include": ["src"] }
EOF
tsc=(node node_modules/typescript/bin/tsc --noEmit)
vitest=(node node_modules/vitest/vitest.mjs run)
step "typecheck src/" "${tsc[@]}" -p tsconfig.sdk-check.json
step "typecheck examples/" "${tsc[@]}" -p examples/tsconfig.json
step "tests: test/unit test/integration test/large" "${vitest[@]}" test/unit test/integration test/large
step "tests: conditional requests (test/contract)" "${vitest[@]}" test/contract -t 'conditional requests'

total=$((SECONDS - started))
if ((${#failed[@]})); then
  section "@aws-sdk/client-s3@$version: FAILED (${failed[*]}) in ${total} s"
  exit 1
fi
section "@aws-sdk/client-s3@$version: all checks passed in ${total} s"
