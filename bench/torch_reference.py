#!/usr/bin/env python3
"""PyTorch twins of vaekit-bench's workloads (bench/src/workloads), same names, shapes,
layers and losses, timed with the protocol of bench/reference_protocol.py (that of
bench/src/timing.rs). One JSON line per workload on stdout.

Run by `cargo run --release -p vaekit-bench`, which passes the same options to both sides;
it can also be run alone:  python bench/torch_reference.py --threads 2
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

from reference_protocol import parse_args, run

# Set by --device before any workload is built; tensors are created there by default.
DEVICE = torch.device("cpu")

ENC = [784, 200, 200]
LATENT = 50


def pin(threads):
    """Threads pinned to cores 0..threads-1, one inter-op thread, as on vaekit's side."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(threads)))
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def linear(i, o):
    w = (torch.randn(o, i) / math.sqrt(i)).requires_grad_()
    b = torch.zeros(o, requires_grad=True)
    return [w, b]


def dense_networks():
    """The IWAE paper's 784-200-200-50 tanh encoder (mean and log-std heads) and
    50-200-200-784 tanh decoder with Bernoulli logits."""
    enc = linear(784, 200) + linear(200, 200) + linear(200, 2 * LATENT)
    dec = linear(LATENT, 200) + linear(200, 200) + linear(200, 784)
    return enc, dec


def mlp(params, x, last_linear=True):
    h = x
    n = len(params) // 2
    for i in range(n):
        h = F.linear(h, params[2 * i], params[2 * i + 1])
        if i + 1 < n or not last_linear:
            h = torch.tanh(h)
    return h


def binary(rows, gen):
    return (torch.rand(rows, 784, generator=gen) >= 0.5).float()


def log_normal(z, mu, log_std):
    return (-0.5 * ((z - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def bernoulli_log_lik(logits, x):
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def train_step(k, batch=100):
    enc, dec = dense_networks()
    params = enc + dec
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator(device=DEVICE).manual_seed(1)
    x = binary(batch, gen)

    def step():
        h = mlp(enc, x)
        mu, log_std = h[:, :LATENT], 0.5 * h[:, LATENT:]
        if k == 1:
            z = mu + log_std.exp() * torch.randn_like(mu)
            rec = bernoulli_log_lik(mlp(dec, z), x)
            kl = 0.5 * (mu ** 2 + (2 * log_std).exp() - 1 - 2 * log_std).sum(-1)
            loss = -(rec - kl).mean()
        else:
            eps = torch.randn(x.shape[0], k, LATENT)
            z = mu[:, None] + log_std.exp()[:, None] * eps
            log_w = (
                bernoulli_log_lik(mlp(dec, z), x[:, None])
                + log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
                - log_normal(z, mu[:, None], log_std[:, None])
            )
            loss = -(torch.logsumexp(log_w, 1) - math.log(k)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def importance():
    enc, dec = dense_networks()
    gen = torch.Generator(device=DEVICE).manual_seed(1)
    x = binary(20, gen)

    def step():
        with torch.no_grad():
            h = mlp(enc, x)
            mu, log_std = h[:, :LATENT], 0.5 * h[:, LATENT:]
            z = mu[:, None] + log_std.exp()[:, None] * torch.randn(20, 500, LATENT)
            log_w = (
                bernoulli_log_lik(mlp(dec, z), x[:, None])
                + log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
                - log_normal(z, mu[:, None], log_std[:, None])
            ).double()
            (torch.logsumexp(log_w, 1) - math.log(500)).sum().item()

    return step


def leapfrog():
    _, dec = dense_networks()
    dec = [p.detach() for p in dec]
    gen = torch.Generator(device=DEVICE).manual_seed(1)
    x = binary(100, gen)[:, None]
    z = torch.randn(100, 16, LATENT)
    p = torch.randn(100, 16, LATENT)
    eps, beta = 0.05, 0.5

    def grad(z):
        z = z.detach().requires_grad_()
        lik = bernoulli_log_lik(mlp(dec, z), x)
        (g,) = torch.autograd.grad(lik.sum(), z)
        return beta * g - z.detach()  # + ∇ log N(z; 0, I)

    g0 = grad(z)

    def step():
        m = p + 0.5 * eps * g0
        z1 = z + eps * m
        m = m + 0.5 * eps * grad(z1)

    return step


def conv3x3():
    gen = torch.Generator(device=DEVICE).manual_seed(2)
    x = torch.randn(32, 64, 14, 14, generator=gen).requires_grad_()
    w = (0.05 * torch.randn(64, 64, 3, 3, generator=gen)).requires_grad_()

    def step():
        F.conv2d(x, w, padding=1).sum().backward()

    return step


def wn_conv(c):
    v = (0.05 * torch.randn(c, c, 3, 3)).requires_grad_()
    g = torch.ones(c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    return v, g, b


def wn_conv_apply(x, params):
    v, g, b = params
    t = F.conv2d(x, v, padding=1)
    scale = g / (v.pow(2).sum((1, 2, 3)) + 1e-12).sqrt()
    return t * scale[None, :, None, None] + b[None, :, None, None]


def resblock():
    c1, c2 = wn_conv(64), wn_conv(64)
    x = torch.randn(32, 64, 14, 14).requires_grad_()

    def step():
        h = wn_conv_apply(F.elu(x), c1)
        h = wn_conv_apply(F.elu(h), c2)
        (x + 0.1 * h).sum().backward()

    return step


def conv_transpose():
    w = (torch.randn(64, 64, 3, 3) / math.sqrt(64 * 9)).requires_grad_()
    b = torch.zeros(64, requires_grad=True)
    x = torch.randn(32, 64, 7, 7).requires_grad_()

    def step():
        F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1).sum().backward()

    return step


def made_masks(d, widths):
    """MADE masks with context (hidden degrees k mod d), natural order, two heads."""
    deg_in = torch.arange(1, d + 1)
    degs = [torch.arange(w) % d for w in widths]
    masks, prev = [], deg_in
    for dg in degs:
        masks.append((dg[:, None] >= prev[None, :]).float())
        prev = dg
    out = torch.cat([deg_in, deg_in])
    masks.append((out[:, None] > prev[None, :]).float())
    return masks


def wn_linear(i, o):
    v = (0.05 * torch.randn(o, i)).requires_grad_()
    return [v, torch.ones(o, requires_grad=True), torch.zeros(o, requires_grad=True)]


def wn_linear_apply(x, params, mask=None):
    v, g, b = params
    w = v * mask if mask is not None else v
    t = x @ w.t()
    return t * (g / (w.pow(2).sum(1) + 1e-12).sqrt()) + b


def iaf_step():
    d, w, c = 64, 1920, 1920
    masks = made_masks(d, [w, w])
    h0, h1, out, ctx = wn_linear(d, w), wn_linear(w, w), wn_linear(w, 2 * d), wn_linear(c, w)
    z = torch.randn(100, d).requires_grad_()
    h = torch.randn(100, c).requires_grad_()

    def step():
        a = F.elu(wn_linear_apply(z, h0, masks[0]) + wn_linear_apply(h, ctx))
        a = F.elu(wn_linear_apply(a, h1, masks[1]))
        o = wn_linear_apply(a, out, masks[2])
        m, s = o[:, :d], o[:, d:]
        log_sigma = F.logsigmoid(s + 1.0)
        value = m + log_sigma.exp() * (z - m)
        (value.pow(2).sum() + log_sigma.sum()).backward()

    return step


WORKLOADS = {
    "dense_vae_step_b100": lambda: train_step(1),
    "dense_vae_step_b20": lambda: train_step(1, batch=20),
    "iwae50_step_b100": lambda: train_step(50),
    "is_eval_20x500": importance,
    "conv3x3_c64_b32_14x14": conv3x3,
    "resblock_c64_b32_14x14": resblock,
    "conv_transpose3x3_s2_7to14": conv_transpose,
    "iaf_step_b100_d64_w1920": iaf_step,
    "hais_leapfrog_b100_c16": leapfrog,
}


def synced(step):
    """`step` followed by a device synchronization (on CUDA), as on vaekit's side."""
    if DEVICE.type != "cuda":
        return step

    def run():
        step()
        torch.cuda.synchronize(DEVICE)

    return run


def main():
    a = parse_args(__doc__, "cpu or cuda[:N] (metal is not timed here)")
    global DEVICE
    if a.device.startswith("metal"):
        sys.exit("torch_reference.py: no Metal twin; run vaekit-bench with --no-torch")
    DEVICE = torch.device(a.device)
    if DEVICE.type != "cpu":
        # A device mode adds per-call overhead: not on the CPU, where timings are compared.
        torch.set_default_device(DEVICE)
    pin(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", file=sys.stderr)
    # Ready once torch is imported and the threads are set; then one answer per name.
    run("torch", WORKLOADS, a, synced)


if __name__ == "__main__":
    main()
