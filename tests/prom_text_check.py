#!/usr/bin/env python3
"""Checks Prometheus text files (exposition format 0.0.4) the way the metrics tests need:
HELP/TYPE before samples, one TYPE per family, counters named *_total, names opensrd_*, valid
names, labels and values, no series twice. Usage: prom_text_check.py FILE..."""
import re, sys
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
sample_re = re.compile(rf"^({name_re})(\{{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*)\}})? (\S+)$")
for path in sys.argv[1:]:
    types, seen = {}, set()
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        where = f"{path}:{n}: {line}"
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert name not in types, "TYPE twice: " + where
            assert typ in ("counter", "gauge"), where
            assert typ != "counter" or name.endswith("_total"), "counter without _total: " + where
            assert name.startswith("opensrd_"), where
            types[name] = typ
        elif line.startswith("# HELP "):
            continue
        else:
            m = sample_re.match(line)
            assert m, "bad sample: " + where
            assert m.group(1) in types, "sample before its TYPE: " + where
            float(m.group(4))
            assert line.rsplit(" ", 1)[0] not in seen, "series twice: " + where
            seen.add(line.rsplit(" ", 1)[0])
    assert types and seen, path + " is empty"
print("exposition format ok")
