#!/usr/bin/env bash
# config-doc-test.sh: docs/config.md lists exactly the YAML keys of the schema comment in runtime/config.h,
# with the same defaults ("required" for required keys, "none" for keys without one). Keys come from the
# comment's indentation ("optimizer:" then "  lr: F = 3e-4" gives optimizer.lr; the "- steps" item under
# stages gives stages[].steps); a line with deeper lines under it and no default is a section, not a key.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import re, sys
head = open("runtime/config.h").read()
schema = head[head.index("Schema (defaults"):head.index("Relative paths are resolved")].splitlines()[1:]
rows = []
for line in schema:
    line = line[2:] if line.startswith(" *") else line
    m = re.match(r"^( +)(- )?([a-z_]+):(.*)$", line)
    if m: rows.append((len(m.group(1)) + (2 if m.group(2) else 0), bool(m.group(2)), m.group(3), m.group(4)))
DEF = re.compile(r"(?<![<>])= ")   # "= 3e-4" gives a default, ">= 0" does not
def default(rest):
    m = DEF.search(rest)
    if not m: return "required" if re.search(r"\brequired\b", rest) else "none"
    d = rest[m.end():].strip()
    d = d[:d.index("]") + 1] if d.startswith("[") else re.split(r"[;,]", d)[0]
    return re.sub(r" (steps?|when .*|\(.*)$", "", d.strip()).strip()
keys, path, items = {}, {}, set()
for i, (ind, item, key, rest) in enumerate(rows):
    for j in [j for j in path if j >= ind]: del path[j]
    items = {j for j in items if j < ind or (j == ind and not item) or (j == ind and item)}
    if item: items.add(ind)
    parents = [path[j] for j in sorted(path)]
    full = ".".join(parents) + ("[]." if ind in items else ".") + key if parents else key
    path[ind] = key
    deeper = i + 1 < len(rows) and rows[i + 1][0] > ind
    if deeper and not DEF.search(rest): continue   # a section: its keys follow
    keys[full] = default(rest)
doc = {}
for line in open("docs/config.md"):
    m = re.match(r"^\| `([^`]+)` \|[^|]*\| ([^|]*) \|", line)
    if m: doc[m.group(1)] = m.group(2).strip().replace("`", "'")
bad = [f"  {k}: runtime/config.h says {keys.get(k)!r}, docs/config.md says {doc.get(k)!r}"
       for k in sorted(set(keys) | set(doc)) if keys.get(k) != doc.get(k)]
if bad:
    print("config-doc: runtime/config.h and docs/config.md disagree:\n" + "\n".join(bad)); sys.exit(1)
print(f"config-doc: {len(keys)} keys agree between runtime/config.h and docs/config.md")
PY
