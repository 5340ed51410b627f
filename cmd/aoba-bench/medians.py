"""medians.py OUT: print the median of every figure over the runs that
run-benchmarks.sh saved in OUT as <name>-<i>.json, with each run's value and
the machine's load average at the end of each run."""
import json, glob, sys, statistics, re
out = sys.argv[1]
names = sorted({re.sub(r'-\d+\.json$', '', f.split('/')[-1]) for f in glob.glob(out + '/*.json')})
for n in names:
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{n}-*.json")) if re.fullmatch(re.escape(n) + r"-\d+\.json", f.split("/")[-1])]
    print(f"### {n} ({len(runs)} runs) loadavg: " + ", ".join(r['params'].get('loadavg','') for r in runs))
    keys = [m['name'] for m in runs[0]['metrics']]
    for k in keys:
        vals = [next((m['value'] for m in r['metrics'] if m['name'] == k), None) for r in runs]
        vals = [v for v in vals if v is not None]
        unit = next(m['unit'] for m in runs[0]['metrics'] if m['name'] == k)
        print(f"{k:40s} median {statistics.median(vals):>12g} {unit:10s} runs {vals}")
