#!/usr/bin/env bash
# Counts the library's public surface as a user of the crate sees it: rustdoc's
# JSON (nightly) of the lib without private items, walked from the crate root
# through public modules, re-exports, inherent impls, traits, variants and fields.
# Prints: public modules, public items, public fields, undocumented public items.
# Items are types, functions, constants, methods of inherent impls, trait items and
# enum variants; undocumented is what `missing_docs` would name (not positional fields).
# Usage: [PUB_SURFACE_LIST=1] scripts/pub-surface.sh [cargo args, e.g. --features synth]
# (PUB_SURFACE_LIST=1 also lists the undocumented items).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo +nightly rustdoc -q --lib "$@" -- \
    -Z unstable-options --output-format json 2>"$log" || { cat "$log" >&2; exit 1; }
python3 - "${CARGO_TARGET_DIR:-target}/doc/pgscope.json" <<'PY'
import json, os, sys

doc = json.load(open(sys.argv[1]))
index = doc["index"]
seen, kinds = set(), {"module": 0, "item": 0, "field": 0}
undocumented = []


def visit(id_):
    item = index.get(str(id_))
    if item is None or item["crate_id"] != 0 or id_ in seen:
        return
    seen.add(id_)
    kind, inner = next(iter(item["inner"].items()))
    if kind == "use":  # a re-export counts as the item it names
        seen.discard(id_)
        if inner["id"] is not None:
            visit(inner["id"])
        return
    if id_ != doc["root"]:
        kinds["module" if kind == "module" else "field" if kind == "struct_field" else "item"] += 1
        # positional fields (`.0`) are exempt, as with `missing_docs`
        if not item["docs"] and not (kind == "struct_field" and item["name"].isdigit()):
            undocumented.append(f'{kind} {item["name"]} ({item["span"]["filename"]}:{item["span"]["begin"][0]})'
                                if item["span"] else f"{kind} {item['name']}")
    children = []
    if kind == "module":
        children = inner["items"]
    elif kind in ("struct", "union"):
        k = inner["kind"]
        children = (k.get("plain", {}).get("fields", []) if isinstance(k, dict) else []) \
            + [f for f in (k.get("tuple", []) if isinstance(k, dict) else []) if f is not None] \
            + inner.get("fields", [])
        children += inherent(inner["impls"])
    elif kind == "enum":
        children = inner["variants"] + inherent(inner["impls"])
    elif kind == "variant":
        k = inner["kind"]
        if isinstance(k, dict):
            children = [f for f in k.get("tuple", []) if f is not None] + k.get("struct", {}).get("fields", [])
    elif kind == "trait":
        children = inner["items"]
    for c in children:
        visit(c)


def inherent(impls):
    """Items of inherent impls only: trait impls add no surface of their own."""
    out = []
    for i in impls:
        imp = index.get(str(i))
        if imp and imp["crate_id"] == 0 and imp["inner"]["impl"]["trait"] is None:
            out += [x for x in imp["inner"]["impl"]["items"]
                    if index.get(str(x), {}).get("visibility") == "public"]
    return out


visit(doc["root"])
print(f"public modules:             {kinds['module']}")
print(f"public items:               {kinds['item']}")
print(f"public fields:              {kinds['field']}")
print(f"undocumented public items:  {len(undocumented)}")
if os.environ.get("PUB_SURFACE_LIST"):
    print("\n".join(sorted(undocumented)))
PY
