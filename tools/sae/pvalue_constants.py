"""Prints the scipy reference values pinned in Tests/SAETests/StatisticsTests.swift: linregress fits (slope,
intercept, r, two-sided p) and regularized incomplete beta values.
Usage: python3 tools/sae/pvalue_constants.py
"""
import numpy as np
import scipy
from scipy import special, stats

print("# scipy", scipy.__version__)
cases = {
    "twelveLayers": ([3.1, 4.0, 5.2, 6.8, 8.1, 9.9, 12.5, 15.0, 18.2, 22.4, 30.1, 41.7],
                     [12.0, 15.5, 14.1, 22.0, 19.3, 25.2, 24.0, 31.8, 29.5, 37.7, 35.0, 48.2]),
    "weak": ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 1.0, 4.0, 3.0, 2.5, 3.5]),
    "negative": ([10.0, 20.0, 30.0, 40.0], [5.0, 3.9, 3.2, 1.1]),
}
for name, (x, y) in cases.items():
    r = stats.linregress(x, y)
    print(f"{name}: slope={r.slope!r} intercept={r.intercept!r} r={r.rvalue!r} p={r.pvalue!r}")
for a, b, x in [(0.5, 0.5, 0.3), (5.0, 0.5, 0.9), (2.0, 3.0, 0.4), (10.0, 0.5, 0.2), (30.0, 2.5, 0.95)]:
    print(f"betainc({a}, {b}, {x}) = {special.betainc(a, b, x)!r}")
for t, dof in [(2.0, 10), (0.5, 3), (4.2, 1), (-3.3, 25)]:
    print(f"t={t} dof={dof}: p = {2 * stats.t.sf(abs(t), dof)!r}")
