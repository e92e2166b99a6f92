# Peer timing for benches/learn.rs adamw_step_4M: torch.optim.AdamW over 16 x 256Ki f32 params, 2 threads.
import time, torch
import sys
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
params = [torch.nn.Parameter(torch.rand(1 << 18) - 0.5) for _ in range(16)]
for p in params:
    p.grad = torch.rand(1 << 18) - 0.5
for foreach in [True, False]:
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=foreach)
    for _ in range(5):
        opt.step()
    best = []
    for _ in range(5):
        t = time.perf_counter(); n = 20
        for _ in range(n):
            opt.step()
        best.append((time.perf_counter() - t) / n)
    best.sort()
    med = best[len(best) // 2]
    print(f"threads={torch.get_num_threads()} torch AdamW foreach={foreach}: {med*1e3:.2f} ms/step, {16*(1<<18)/med/1e6:.0f} Mparams/s")
