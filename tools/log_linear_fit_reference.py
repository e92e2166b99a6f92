"""Reference figures for `crates/engine/src/o1/report/fit.rs`: the least-squares line of accuracy on log10 RL FLOPs
and its R², by numpy. Run: python3 tools/log_linear_fit_reference.py"""

import numpy as np

flops = [2e9, 7e9, 3e10, 1e11, 4e11]
accuracy = [0.31, 0.36, 0.35, 0.41, 0.44]
x = np.log10(flops)
slope, intercept = np.polyfit(x, accuracy, 1)
r_squared = np.corrcoef(x, accuracy)[0, 1] ** 2
print(f"slope {slope:.9f} intercept {intercept:.9f} r_squared {r_squared:.9f}")
