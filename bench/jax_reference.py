#!/usr/bin/env python3
"""JAX twins of vaekit-bench's workloads (bench/src/workloads), same names, shapes, layers
and losses as bench/torch_reference.py, each step compiled whole with `jax.jit` (forward,
backward and, for training, the Adam update), so that XLA fuses the element-wise work and no
per-op dispatch remains. Compilation happens before timing. Timed with the protocol of
bench/reference_protocol.py (that of bench/src/timing.rs), every iteration waiting for its
result. One JSON line per workload on stdout.

Run by `cargo run --release -p vaekit-bench`, which passes the same options to every side;
it can also be run alone:  python bench/jax_reference.py --threads 2
"""

import math
import os
import sys

from reference_protocol import parse_args, run


def configure(threads):
    """The process's cores, set before jax is imported (as on the other sides: threads pinned
    to cores 0..threads-1). XLA's CPU thread pool follows the affinity; it has no thread-count
    flag."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(threads)))


# Imported in main(), after configure().
jax = jnp = lax = None

ENC = [784, 200, 200]
LATENT = 50


def keys(seed, n):
    return list(jax.random.split(jax.random.PRNGKey(seed), n))


def linear(key, i, o):
    return [jax.random.normal(key, (o, i), jnp.float32) / math.sqrt(i), jnp.zeros(o, jnp.float32)]


def dense_networks(seed=0):
    """The IWAE paper's 784-200-200-50 tanh encoder (mean and log-std heads) and
    50-200-200-784 tanh decoder with Bernoulli logits."""
    k = keys(seed, 6)
    enc = linear(k[0], 784, 200) + linear(k[1], 200, 200) + linear(k[2], 200, 2 * LATENT)
    dec = linear(k[3], LATENT, 200) + linear(k[4], 200, 200) + linear(k[5], 200, 784)
    return enc, dec


def mlp(params, x):
    h = x
    n = len(params) // 2
    for i in range(n):
        h = h @ params[2 * i].T + params[2 * i + 1]
        if i + 1 < n:
            h = jnp.tanh(h)
    return h


def binary(rows, seed):
    return (jax.random.uniform(jax.random.PRNGKey(seed), (rows, 784)) >= 0.5).astype(jnp.float32)


def log_normal(z, mu, log_std):
    return (-0.5 * ((z - mu) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def bernoulli_log_lik(logits, x):
    # log sigmoid(l) for x = 1, log sigmoid(-l) for x = 0, summed over pixels.
    return -(jnp.logaddexp(0.0, logits) - x * logits).sum(-1)


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam as torch.optim.Adam computes it, on a list of arrays."""

    def init(params):
        return {"t": jnp.zeros((), jnp.float32), "m": [jnp.zeros_like(p) for p in params],
                "v": [jnp.zeros_like(p) for p in params]}

    def update(params, grads, state):
        t = state["t"] + 1
        m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
        v = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], grads)]
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        new = [p - lr * (mi / c1) / (jnp.sqrt(vi / c2) + eps) for p, mi, vi in zip(params, m, v)]
        return new, {"t": t, "m": m, "v": v}

    return init, update


def train_step(k, batch=100):
    enc, dec = dense_networks()
    params = enc + dec
    n_enc = len(enc)
    init, update = adam()
    x = binary(batch, 1)

    def loss(params, x, key):
        enc, dec = params[:n_enc], params[n_enc:]
        h = mlp(enc, x)
        mu, log_std = h[:, :LATENT], 0.5 * h[:, LATENT:]
        if k == 1:
            z = mu + jnp.exp(log_std) * jax.random.normal(key, mu.shape, jnp.float32)
            rec = bernoulli_log_lik(mlp(dec, z), x)
            kl = 0.5 * (mu ** 2 + jnp.exp(2 * log_std) - 1 - 2 * log_std).sum(-1)
            return -(rec - kl).mean()
        eps = jax.random.normal(key, (x.shape[0], k, LATENT), jnp.float32)
        z = mu[:, None] + jnp.exp(log_std)[:, None] * eps
        log_w = (
            bernoulli_log_lik(mlp(dec, z), x[:, None])
            + log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z))
            - log_normal(z, mu[:, None], log_std[:, None])
        )
        return -(jax.scipy.special.logsumexp(log_w, 1) - math.log(k)).mean()

    # The batch is an argument, not a constant XLA could fold into the program.
    @jax.jit
    def step(params, opt, key, x):
        key, sub = jax.random.split(key)
        grads = jax.grad(loss)(params, x, sub)
        params, opt = update(params, grads, opt)
        return params, opt, key

    state = [params, init(params), jax.random.PRNGKey(3)]

    def run():
        state[0], state[1], state[2] = step(*state, x)
        return state[0]

    return run


def importance():
    enc, dec = dense_networks()
    x = binary(20, 1)

    # Networks and data are arguments, not constants XLA could fold into the program.
    @jax.jit
    def estimate(enc, dec, x, key):
        key, sub = jax.random.split(key)
        h = mlp(enc, x)
        mu, log_std = h[:, :LATENT], 0.5 * h[:, LATENT:]
        z = mu[:, None] + jnp.exp(log_std)[:, None] * jax.random.normal(sub, (20, 500, LATENT), jnp.float32)
        log_w = (
            bernoulli_log_lik(mlp(dec, z), x[:, None])
            + log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z))
            - log_normal(z, mu[:, None], log_std[:, None])
        ).astype(jnp.float64)
        return (jax.scipy.special.logsumexp(log_w, 1) - math.log(500)).sum(), key

    state = [jax.random.PRNGKey(4)]

    def run():
        total, state[0] = estimate(enc, dec, x, state[0])
        return float(total)  # read on the host, as the other sides do

    return run


def leapfrog():
    _, dec = dense_networks()
    x = binary(100, 1)[:, None]
    k = keys(5, 2)
    z = jax.random.normal(k[0], (100, 16, LATENT), jnp.float32)
    p = jax.random.normal(k[1], (100, 16, LATENT), jnp.float32)
    eps, beta = 0.05, 0.5

    def grad(dec, x, z):
        g = jax.grad(lambda z: bernoulli_log_lik(mlp(dec, z), x).sum())(z)
        return beta * g - z  # + ∇ log N(z; 0, I)

    g0 = jax.jit(grad)(dec, x, z)

    @jax.jit
    def step(dec, x, z, p, g0):
        m = p + 0.5 * eps * g0
        z1 = z + eps * m
        return m + 0.5 * eps * grad(dec, x, z1)

    return lambda: step(dec, x, z, p, g0)


def conv(x, w, padding=1):
    return lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"))


def conv3x3():
    k = keys(2, 2)
    x = jax.random.normal(k[0], (32, 64, 14, 14), jnp.float32)
    w = 0.05 * jax.random.normal(k[1], (64, 64, 3, 3), jnp.float32)
    step = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=(0, 1)))
    return lambda: step(x, w)


def wn_conv(key, c):
    return [0.05 * jax.random.normal(key, (c, c, 3, 3), jnp.float32), jnp.ones(c, jnp.float32),
            jnp.zeros(c, jnp.float32)]


def wn_conv_apply(x, params):
    v, g, b = params
    t = conv(x, v)
    scale = g / jnp.sqrt((v ** 2).sum((1, 2, 3)) + 1e-12)
    return t * scale[None, :, None, None] + b[None, :, None, None]


def resblock():
    k = keys(6, 3)
    c1, c2 = wn_conv(k[0], 64), wn_conv(k[1], 64)
    x = jax.random.normal(k[2], (32, 64, 14, 14), jnp.float32)

    def out(x, c1, c2):
        h = wn_conv_apply(jax.nn.elu(x), c1)
        h = wn_conv_apply(jax.nn.elu(h), c2)
        return (x + 0.1 * h).sum()

    step = jax.jit(jax.grad(out, argnums=(0, 1, 2)))
    return lambda: step(x, c1, c2)


def conv_transpose():
    k = keys(7, 2)
    w = jax.random.normal(k[0], (64, 64, 3, 3), jnp.float32) / math.sqrt(64 * 9)
    b = jnp.zeros(64, jnp.float32)
    x = jax.random.normal(k[1], (32, 64, 7, 7), jnp.float32)

    def out(x, w, b):
        # PyTorch's conv_transpose2d(stride 2, padding 1, output_padding 1), 7 -> 14, whose
        # weight [in, out, kh, kw] is the forward convolution's OIHW kernel: the input dilated
        # by 2, padded (k - 1 - p, k - 1 - p + output_padding) = (1, 2), and a stride-1
        # convolution with that kernel flipped and transposed. Checked against the gradient of
        # the stride-2 convolution (jax.vjp): equal to the last bit.
        y = lax.conv_transpose(x, w, (2, 2), [(1, 2), (1, 2)],
                               dimension_numbers=("NCHW", "OIHW", "NCHW"), transpose_kernel=True)
        return (y + b[None, :, None, None]).sum()

    step = jax.jit(jax.grad(out, argnums=(0, 1, 2)))
    return lambda: step(x, w, b)


def made_masks(d, widths):
    """MADE masks with context (hidden degrees k mod d), natural order, two heads."""
    deg_in = jnp.arange(1, d + 1)
    degs = [jnp.arange(w) % d for w in widths]
    masks, prev = [], deg_in
    for dg in degs:
        masks.append((dg[:, None] >= prev[None, :]).astype(jnp.float32))
        prev = dg
    out = jnp.concatenate([deg_in, deg_in])
    masks.append((out[:, None] > prev[None, :]).astype(jnp.float32))
    return masks


def wn_linear(key, i, o):
    return [0.05 * jax.random.normal(key, (o, i), jnp.float32), jnp.ones(o, jnp.float32),
            jnp.zeros(o, jnp.float32)]


def wn_linear_apply(x, params, mask=None):
    v, g, b = params
    w = v * mask if mask is not None else v
    t = x @ w.T
    return t * (g / jnp.sqrt((w ** 2).sum(1) + 1e-12)) + b


def iaf_step():
    d, w, c = 64, 1920, 1920
    masks = made_masks(d, [w, w])
    k = keys(8, 6)
    layers = [wn_linear(k[0], d, w), wn_linear(k[1], w, w), wn_linear(k[2], w, 2 * d),
              wn_linear(k[3], c, w)]
    z = jax.random.normal(k[4], (100, d), jnp.float32)
    h = jax.random.normal(k[5], (100, c), jnp.float32)

    def out(z, h, layers):
        h0, h1, o_, ctx = layers
        a = jax.nn.elu(wn_linear_apply(z, h0, masks[0]) + wn_linear_apply(h, ctx))
        a = jax.nn.elu(wn_linear_apply(a, h1, masks[1]))
        o = wn_linear_apply(a, o_, masks[2])
        m, s = o[:, :d], o[:, d:]
        log_sigma = jax.nn.log_sigmoid(s + 1.0)
        value = m + jnp.exp(log_sigma) * (z - m)
        return (value ** 2).sum() + log_sigma.sum()

    step = jax.jit(jax.grad(out, argnums=(0, 1, 2)))
    return lambda: step(z, h, layers)


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


def blocking(step):
    """`step`, waiting until its result is computed (jax dispatches asynchronously)."""

    def run():
        jax.block_until_ready(step())

    return run


def main():
    a = parse_args(__doc__, "cpu only (the GPU comparison is PyTorch's)")
    if a.device != "cpu":
        sys.exit("jax_reference.py: CPU only; run vaekit-bench with --no-jax on other devices")
    configure(max(1, a.threads))
    global jax, jnp, lax
    import jax as jax_module

    jax_module.config.update("jax_enable_x64", True)  # f64 where a workload asks for it
    jax_module.config.update("jax_platforms", "cpu")
    jax = jax_module
    jnp = jax.numpy
    lax = jax.lax
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"jax {jax.__version__}, {cores} core(s), XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
          file=sys.stderr)
    # One more untimed call: the compilation.
    run("jax", WORKLOADS, a, blocking, extra_warmup=1)


if __name__ == "__main__":
    main()
